"""Which process of a distributed run this is: rank 0 alone writes a run's files."""

from __future__ import annotations

from pytorch_lightning.utilities.rank_zero import rank_zero_only


def is_rank_zero() -> bool:
    """Rank 0 of a distributed run (or a single process): the one that writes artefacts. Known
    from the environment before any trainer exists (LOCAL_RANK, RANK, SLURM_PROCID), as
    Lightning's public `rank_zero_only.rank` records it on import."""
    return getattr(rank_zero_only, "rank", 0) == 0

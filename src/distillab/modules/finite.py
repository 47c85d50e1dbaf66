"""The guard against a non-finite training loss: the run stops with an error naming the step
(and, when checked every step, the terms) instead of training on garbage; nothing is saved
after it, so the last good checkpoint stays as it was.

Reading the loss on the host is a sync: on an accelerator it drains the queue of launched
kernels every step. `FiniteGuard(every=N)` keeps a flag on the device instead and reads it
every N steps, before every checkpoint is written and at the end of training, so a NaN is still
caught before it is saved, up to N - 1 steps after it happened (the weights may have taken
those steps; they are never written). `every=1` (the default) checks each step before the
optimiser step, as the error's per-term detail needs.
"""

from __future__ import annotations

import torch
from torch import Tensor

from distillab.errors import DistillabError

KEEP = "stopped without saving, the last good checkpoint is kept"


class NonFiniteLossError(DistillabError):
    """A training loss became NaN or inf: the run stops instead of training on garbage."""


def check_finite(loss: Tensor, values: dict[str, Tensor], step: int) -> None:
    """Raise `NonFiniteLossError` naming the step and the (unweighted) terms that are not
    finite. One host sync per step; a NaN is caught before it reaches the weights."""
    if bool(torch.isfinite(loss.detach()).all()):
        return
    bad = {k: float(v.detach()) for k, v in values.items() if not torch.isfinite(v).all()}
    terms = ", ".join(f"{k}={v}" for k, v in bad.items()) or "the weighted sum only"
    raise NonFiniteLossError(
        f"non-finite training loss at step {step} (loss={float(loss.detach())}; "
        f"non-finite terms: {terms}); {KEEP} "
        "(trainer.detect_anomaly=true finds the operation that produced it)"
    )


class FiniteGuard:
    """`module.finite_check_every` = `every`: how often the loss is read on the host."""

    def __init__(self, every: int = 1) -> None:
        if every < 1:
            raise ValueError(f"module.finite_check_every={every}: must be >= 1")
        self.every = every
        self.bad: Tensor | None = None  # device flag: a non-finite loss since the last read
        self.since: int | None = None  # the first step the flag covers

    def __call__(self, loss: Tensor, values: dict[str, Tensor], step: int) -> None:
        if self.every == 1:
            check_finite(loss, values, step)
            return
        flag = ~torch.isfinite(loss.detach()).all()
        self.bad = flag if self.bad is None else self.bad | flag
        self.since = step if self.since is None else self.since
        if (step + 1) % self.every == 0:
            self.flush(step)

    def flush(self, step: int) -> None:
        """Read the flag (a host sync): raise if a loss since the last read was not finite."""
        bad, since = self.bad, self.since
        self.bad = self.since = None
        if bad is not None and bool(bad):
            raise NonFiniteLossError(
                f"non-finite training loss between steps {since} and {step} (read every "
                f"{self.every} steps: module.finite_check_every=1 names the step and its "
                f"terms); {KEEP}"
            )

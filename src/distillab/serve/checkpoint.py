"""Serving a checkpoint: it is exported once at start (ONNX graphs, tokenizer, model card) to a
directory, then served through the same torch-free runtime as an export, so a checkpoint and
its export answer alike and batch alike. The only module of `distillab.serve` that imports
torch (through the export), and only when `ckpt=` names a checkpoint file."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf


def export_checkpoint(ckpt: str | Path, out_dir: Path) -> Path:
    """Export `ckpt` (inside `<run>/checkpoints/`, with the run's `config.yaml` and
    `tokenizer/`) into `out_dir`, with the context settings of its run (as `distillab-chat`
    reads them) and its model card."""
    from distillab.chat.replier import run_directory
    from distillab.checkpoint import hyperparameters, model_from, read_checkpoint
    from distillab.data.tokenizer import load_tokenizer
    from distillab.export.card import write_model_card
    from distillab.export.families import export_any
    from distillab.export.onnx import export_settings

    run_dir = run_directory(ckpt)
    data = OmegaConf.load(run_dir / "config.yaml").data
    state = read_checkpoint(ckpt)
    hp = hyperparameters(state)
    tok = load_tokenizer(str(run_dir / "tokenizer"))
    settings = export_settings(
        tok,
        pad_id=hp["pad_id"],
        bos_id=hp["bos_id"],
        eos_id=hp["eos_id"],
        context_turns=data.context_turns,
        max_source_len=data.max_source_len,
        max_len=data.max_target_len,
    )
    out = export_any(model_from(state, ckpt), out_dir, tok, settings)
    write_model_card(out, run_dir, dict(hp))
    return out

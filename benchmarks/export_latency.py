"""Batch-1 greedy decode latency per token of teacher and student in eager PyTorch, ONNX fp32
and ONNX int8 (distillab.export), each against its arithmetic bound.

    python benchmarks/export_latency.py --json /tmp/export_latency.json   # ~1 min, 2 cores

Standalone, it builds the quickstart-size teacher and student (random weights: latency only)
and decodes fixed-length replies (no early EOS) from synthetic contexts of
`--source-len` tokens; `benchmarks/run.py` calls `export_rows` with real validation contexts.
The bound of a model is its decode FLOPs per token (FlopCounterMode on the eager decode)
over the matmul peak measured in the same run; `ratio_to_bound` says how far above it each
runtime is (dispatch, not arithmetic, is a small model's batch-1 decode time).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from distillab.decoding import Greedy
from distillab.export.families import export_any
from distillab.export.runtime_kv import open_export
from distillab.models import Seq2Seq

GREEDY = Greedy()
RUNTIMES = ("eager", "onnx_fp32", "onnx_int8")
# quickstart sizes (conf/experiment/quickstart.yaml): vocab 4000, student 32/64, teacher 128/256
QUICKSTART = {
    "teacher": dict(emb_dim=128, hidden_size=256),
    "student": dict(emb_dim=32, hidden_size=64),
}


class NoTokenizer:
    def save_pretrained(self, path: str) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)


def decode_flops_per_token(model: nn.Module, src, mask, bos_id: int, tokens: int) -> float:
    with FlopCounterMode(display=False) as counter:
        GREEDY(model, src, mask, bos_id=bos_id, eos_id=-1, max_len=tokens)
    return counter.get_total_flops() / tokens


def export_rows(
    models: dict[str, nn.Module],
    contexts: list[tuple[torch.Tensor, torch.Tensor]],
    bos_id: int,
    tokens: int,
    peak_flops: float,
    workdir: Path,
) -> dict[str, float]:
    """``latency_ms_per_token.<model>.<runtime>``, ``bound_ms_per_token.<model>``,
    ``ratio_to_bound.<model>.<runtime>`` and ``ratio.student_eager_over_onnx`` (ONNX fp32)
    for batch-1 contexts; the runtimes take turns on each context (drift hits them alike)."""
    threads = torch.get_num_threads()
    settings = dict(pad_id=0, bos_id=bos_id, eos_id=-1, unk_id=1, self_id=4, other_id=5)
    settings.update(context_turns=1, max_source_len=4096, max_len=tokens)
    decoders = {}
    for name, model in models.items():
        model = model.cpu().eval()
        out = export_any(model, workdir / name, NoTokenizer(), settings)  # GRU or transformer
        fp32, int8 = open_export(out, "fp32", threads), open_export(out, "int8", threads)
        decoders[name] = {
            "eager": lambda s, m, model=model: GREEDY(
                model, s, m, bos_id=bos_id, eos_id=-1, max_len=tokens
            ),
            "onnx_fp32": lambda s, m, rt=fp32: rt.greedy(s.numpy(), m.numpy(), tokens, -1),
            "onnx_int8": lambda s, m, rt=int8: rt.greedy(s.numpy(), m.numpy(), tokens, -1),
        }
    times = {(n, r): [] for n in decoders for r in RUNTIMES}
    for i, (src, mask) in enumerate(contexts):
        for name, runtimes in decoders.items():
            for runtime, decode in runtimes.items():
                t0 = time.perf_counter()
                decode(src, mask)
                if i >= 2:  # two warm-up contexts
                    times[(name, runtime)].append(time.perf_counter() - t0)
    r: dict[str, float] = {}
    for name, model in models.items():
        flops = decode_flops_per_token(model, *contexts[0], bos_id, tokens)
        bound_ms = 1000 * flops / peak_flops
        r[f"decode_flops_per_token.{name}"] = flops
        r[f"bound_ms_per_token.{name}"] = bound_ms
        for runtime in RUNTIMES:
            ms = 1000 * statistics.median(times[(name, runtime)]) / tokens
            r[f"latency_ms_per_token.{name}.{runtime}"] = ms
            r[f"ratio_to_bound.{name}.{runtime}"] = ms / bound_ms
    if "student" in models:
        r["ratio.student_eager_over_onnx"] = (
            r["latency_ms_per_token.student.eager"] / r["latency_ms_per_token.student.onnx_fp32"]
        )
        r["ratio.student_eager_over_onnx_int8"] = (
            r["latency_ms_per_token.student.eager"] / r["latency_ms_per_token.student.onnx_int8"]
        )
    return r


def matmul_peak(n: int = 1024, reps: int = 10, trials: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for trial in range(trials + 1):
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        if trial:
            best = min(best, time.perf_counter() - t0)
    return 2 * n**3 * reps / best


def table(r: dict[str, float]) -> str:
    lines = ["| model | runtime | ms / token | x arithmetic bound |", "|---|---|---|---|"]
    for key, ms in r.items():
        if key.startswith("latency_ms_per_token."):
            _, name, runtime = key.split(".")
            bound = r[f"ratio_to_bound.{name}.{runtime}"]
            lines.append(f"| {name} | {runtime} | {ms:.3f} | {bound:.0f} |")
    if "ratio.student_eager_over_onnx" in r:
        lines.append(f"\nstudent eager / ONNX fp32: {r['ratio.student_eager_over_onnx']:.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads")
    p.add_argument("--contexts", type=int, default=30, help="batch-1 decodes per runtime")
    p.add_argument("--tokens", type=int, default=24, help="reply length (quickstart's)")
    p.add_argument("--source-len", type=int, default=32)
    p.add_argument("--vocab", type=int, default=4000)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models = {name: Seq2Seq(args.vocab, 0, **size).eval() for name, size in QUICKSTART.items()}
    g = torch.Generator().manual_seed(1)
    contexts = [
        (
            torch.randint(6, args.vocab, (1, args.source_len), generator=g),
            torch.ones(1, args.source_len, dtype=torch.bool),
        )
        for _ in range(args.contexts + 2)
    ]
    peak = matmul_peak()
    with tempfile.TemporaryDirectory(prefix="distillab-export-bench-") as tmp:
        r = export_rows(models, contexts, 2, args.tokens, peak, Path(tmp))
    r.update({"peak_flops": peak, "meta.threads": args.threads, "meta.torch": torch.__version__})
    print(table(r))
    if args.json:
        args.json.write_text(json.dumps(r, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())

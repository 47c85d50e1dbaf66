"""Cost of a Hugging Face teacher (distillab.teachers.HFTeacher) on CPU: one teacher-forced
pass per training batch (online KD, or once per row when the outputs are cached) and decoding
(sequence-level KD: no key/value cache, each step reruns the decoder on the prefix).

    python benchmarks/hf_teacher.py                 # tiny random BART and GPT-2 (from tests/)
    python benchmarks/hf_teacher.py --path DIR ...  # your saved models

Prints a markdown table; medians of `--repeats` timed calls after one warm-up call.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from distillab.data.batch import Batch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.hf_tiny builds the tiny models


def timed(fn, repeats: int) -> float:
    fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out) * 1000


def batch_for(teacher, batch: int, src_len: int, tgt_len: int) -> Batch:
    """Random sources and teacher-forcing inputs (what `outputs` reads); no padding."""
    g = torch.Generator().manual_seed(0)
    hi = teacher.n_known
    src = torch.randint(4, hi, (batch, src_len), generator=g)
    tgt_in = torch.randint(4, hi, (batch, tgt_len), generator=g)
    tgt_in[:, 0] = teacher.bos_id
    tgt_out = torch.roll(tgt_in, -1, dims=1)
    return Batch(
        index=torch.arange(batch),
        src=src,
        src_mask=torch.ones_like(src, dtype=torch.bool),
        tgt_in=tgt_in,
        tgt_out=tgt_out,
        tgt_mask=torch.ones_like(tgt_out, dtype=torch.bool),
        topic=torch.zeros(batch, dtype=torch.long),
        rating=torch.zeros(batch),
        rating_mask=torch.zeros(batch, dtype=torch.bool),
        n_tokens=batch * tgt_len,
    )


def main() -> None:
    from distillab.decoding import Beam, Greedy
    from distillab.teachers import HFTeacher

    ap = argparse.ArgumentParser()
    ap.add_argument("--path", nargs="*", default=None)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--src-len", type=int, default=48)
    ap.add_argument("--tgt-len", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    paths = args.path
    if not paths:
        from tests.hf_tiny import save_tiny

        tmp = Path(tempfile.mkdtemp())
        paths = [str(save_tiny(k, tmp / k)) for k in ("bart", "gpt2")]
    print(f"batch {args.batch}, source {args.src_len}, target {args.tgt_len} tokens, "
          f"{args.threads} threads; ms per call (median of {args.repeats})\n")  # fmt: skip
    print("| model | kind | params | teacher-forced pass | greedy decode | beam-4 decode |")
    print("|---|---|---|---|---|---|")
    for path in paths:
        t = HFTeacher(path, max_len=args.tgt_len)
        b = batch_for(t, args.batch, args.src_len, args.tgt_len)
        params = sum(p.numel() for p in t.network.parameters())
        fwd = timed(lambda: t.outputs(b), args.repeats)  # noqa: B023

        def decode(strategy, t=t, b=b):
            return lambda: t.generate(b.src, b.src_mask, strategy)

        greedy = timed(decode(Greedy()), args.repeats)
        beam = timed(decode(Beam(beam_size=4)), max(1, args.repeats // 2))
        name = Path(path).name
        print(f"| {name} | {t.kind} | {params:,} | {fwd:.1f} | {greedy:.1f} | {beam:.1f} |")


if __name__ == "__main__":
    main()

"""Transformer student benchmarks: training step in distillab vs a plain PyTorch loop, batch-1
greedy decoding with the key/value cache vs without, exported (ONNX) vs eager.

    python benchmarks/transformer.py --quick              # experiment=quickstart_transformer
    python benchmarks/transformer.py --quick model=hf_causal model.layers=2

The training comparison is `benchmarks/run.py`'s (`fit`: a real Trainer with the job's module;
`raw_loop`: the same model, initial weights, batches, loss, optimiser, schedule and clipping
written by hand), interleaved over rounds; here the model is the preset's transformer student.
Decoding uses random weights at the preset's sizes (latency only) on validation contexts;
"no cache" reruns the whole prefix through the teacher-forced forward at every step (what
decoding cost before the cache), and must give the same tokens.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import open_dict

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_latency import export_rows  # noqa: E402
from run import DECODE_LEN, GREEDY, fit, make_config, parse_args, raw_loop, val_contexts  # noqa: E402

from distillab.compose.heads import task_heads  # noqa: E402
from distillab.compose.modules import module_kwargs  # noqa: E402
from distillab.compose.teachers import teacher_job_config  # noqa: E402
from distillab.modules.seq2seq import Seq2SeqModule  # noqa: E402


@torch.inference_mode()
def greedy_no_cache(model, src, mask, bos_id: int, max_len: int) -> torch.Tensor:
    """Greedy decoding by the full teacher-forced pass over the prefix at every step."""
    ys = torch.full((src.size(0), 1), bos_id, dtype=torch.long)
    ban = torch.zeros(model.vocab_size)
    ban[[model.pad_id, bos_id]] = float("-inf")
    for _ in range(max_len):
        logits = model(src, mask, ys).logits[:, -1].float()
        ys = torch.cat([ys, (logits + ban).argmax(-1, keepdim=True)], 1)
    return ys[:, 1:]


def decode_rows(model, contexts, bos_id: int, tokens: int) -> dict[str, float]:
    """ms per token at batch 1, cached and uncached taking turns on each context."""
    cached = lambda s, m: GREEDY(model, s, m, bos_id=bos_id, eos_id=-1, max_len=tokens)  # noqa: E731
    plain = lambda s, m: greedy_no_cache(model, s, m, bos_id, tokens)  # noqa: E731
    times: dict[str, list[float]] = {"kv_cache": [], "no_cache": []}
    same = 0
    for i, (src, mask) in enumerate(contexts):
        outs = {}
        for name, decode in (("kv_cache", cached), ("no_cache", plain)):
            t0 = time.perf_counter()
            outs[name] = decode(src, mask)
            if i >= 2:
                times[name].append(time.perf_counter() - t0)
        same += int(torch.equal(outs["kv_cache"], outs["no_cache"]))
    r = {
        f"latency_ms_per_token.{k}": 1000 * statistics.median(v) / tokens for k, v in times.items()
    }
    r["ratio.no_cache_over_kv_cache"] = (
        r["latency_ms_per_token.no_cache"] / r["latency_ms_per_token.kv_cache"]
    )
    r["same_tokens_share"] = same / len(contexts)
    return r


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(a.startswith("--experiment") for a in argv):
        argv = ["--experiment", "quickstart_transformer", *argv]
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    r: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="distillab-tf-bench-") as tmp:
        cfg = make_config(args, Path(tmp))
        with open_dict(cfg):
            cfg.data.batch_size = args.batch_size
        pl.seed_everything(cfg.seed, verbose=False)
        dm = instantiate(cfg.data, conversation_bag=bool(cfg.task.get("conversation_bag")))
        dm.load()

        def student() -> float:
            pl.seed_everything(cfg.seed, verbose=False)
            module = Seq2SeqModule(**module_kwargs(cfg, dm, task_heads(cfg.task, dm)))
            return fit(cfg, module, dm, args)

        rounds: dict[str, list[float]] = {"distillab": [], "plain": []}
        for rep in range(args.repeats):
            order = ["distillab", "plain"][:: 1 if rep % 2 == 0 else -1]
            for name in order:
                run = student if name == "distillab" else lambda: raw_loop(cfg, dm, args)
                rounds[name].append(run())
            print(
                f"round {rep + 1}: {rounds['distillab'][-1]:.0f} vs {rounds['plain'][-1]:.0f} tok/s",
                file=sys.stderr,
            )
        pairs = zip(rounds["distillab"], rounds["plain"], strict=True)
        r["tokens_per_s.distillab"] = max(rounds["distillab"])
        r["tokens_per_s.plain"] = max(rounds["plain"])
        r["ratio.plain_over_distillab"] = statistics.median(p / d for d, p in pairs)

        pl.seed_everything(cfg.seed, verbose=False)
        model = Seq2SeqModule(**module_kwargs(cfg, dm, task_heads(cfg.task, dm))).model.eval()
        tcfg = teacher_job_config(cfg)
        teacher = Seq2SeqModule(**module_kwargs(tcfg, dm, task_heads(tcfg.task, dm))).model.eval()
        loader = val_contexts(dm, 1)
        contexts = [(b.src, b.src_mask) for _, b in zip(range(args.decodes), loader, strict=False)]
        for name, m in (("student", model), ("teacher", teacher)):
            for k, v in decode_rows(m, contexts, dm.bos_id, DECODE_LEN).items():
                r[f"{name}.{k}"] = v
            r[f"params.{name}"] = sum(p.numel() for p in m.parameters())
        r.update(
            export_rows(
                {"student": model, "teacher": teacher},
                contexts,
                dm.bos_id,
                DECODE_LEN,
                1.0,
                Path(tmp),
            )
        )
    print(table(r, args))


def table(r: dict[str, float], args) -> str:
    lines = [
        f"Transformer benchmarks ({args.experiment}, {args.threads} threads, batch {args.batch_size}, "
        f"{args.warmup}+{args.steps} steps x {args.repeats} rounds, {args.decodes} contexts)",
        "",
        "| training | target tokens/s |",
        "|---|---|",
        f"| distillab (Lightning, Seq2SeqModule) | {r['tokens_per_s.distillab']:,.0f} |",
        f"| plain PyTorch loop | {r['tokens_per_s.plain']:,.0f} |",
        f"| framework overhead (median paired plain/distillab - 1) | {100 * (r['ratio.plain_over_distillab'] - 1):+.1f}% |",
        "",
        "| batch-1 greedy, ms/token | params | KV cache | no cache | no cache / cache | same tokens | ONNX fp32 | ONNX int8 | eager / ONNX fp32 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("student", "teacher"):
        lat = lambda k, name=name: r[f"latency_ms_per_token.{name}.{k}"]  # noqa: E731
        lines.append(
            f"| {name} | {r[f'params.{name}']:,} | {r[f'{name}.latency_ms_per_token.kv_cache']:.3f} | "
            f"{r[f'{name}.latency_ms_per_token.no_cache']:.3f} | {r[f'{name}.ratio.no_cache_over_kv_cache']:.2f}x | "
            f"{r[f'{name}.same_tokens_share']:.2f} | {lat('onnx_fp32'):.3f} | {lat('onnx_int8'):.3f} | "
            f"{lat('eager') / lat('onnx_fp32'):.2f}x |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()

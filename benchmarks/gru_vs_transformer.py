"""GRU student vs transformer student of about the same size, each distilled from the same
teacher: quality, parameters, batch-1 greedy latency eager and exported.

    python benchmarks/gru_vs_transformer.py [--output-root outputs] [--json FILE] [overrides]
    python benchmarks/gru_vs_transformer.py --quick --output-root /tmp/gvt   # smoke, seconds

The teacher is experiment=quickstart_transformer's (a BART-style transformer, the case of a
researcher with a transformer teacher choosing a student family), from the registry under
--output-root: trained there first if absent, so after a quickstart_transformer run it is
reused. Both students are distilled by the distill job (`distillab.jobs.distill.run`) under
that preset's protocol: the same data, steps, seed, objective and cached teacher outputs.
The transformer student is the preset's; the GRU student (`model=gru_student`, the GRU
quickstart's kind, its embedding width the transformer's) gets the hidden size whose
parameter count is closest to the transformer's (within 10%, else an error). Trailing
Hydra overrides apply to both runs, `model.*` ones to the transformer student only (the GRU
is sized from it). Latency: batch-1 greedy decodes of DECODE_LEN tokens (no early EOS) on
validation contexts, eager PyTorch and the ONNX export (`export_any` / `open_export`, fp32
and int8), the runtimes taking turns on each context (benchmarks/export_latency.py), on
--threads threads (default 1: at batch 1 these models are too small to gain from a second
thread, and on a shared machine a second thread mostly adds waiting for it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf, open_dict

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_latency import export_rows  # noqa: E402
from run import DECODE_LEN, val_contexts  # noqa: E402

from distillab.compose import Run  # noqa: E402
from distillab.compose import compose as compose_run  # noqa: E402
from distillab.compose.modules import module_kwargs  # noqa: E402
from distillab.errors import ConfigError  # noqa: E402
from distillab.models.build import build_model  # noqa: E402
from distillab.modules.seq2seq import Seq2SeqModule  # noqa: E402
from distillab.train import CONF_DIR  # noqa: E402
from distillab.validate import validate  # noqa: E402

STUDENTS = ("gru", "transformer")
TOLERANCE = 0.10  # the GRU's parameter count within 10% of the transformer's
# --quick: tiny data, models and budgets (a smoke run in seconds), both students alike
QUICK = [
    "data.max_examples=400",
    "data.vocab_size=300",
    "data.max_source_len=24",
    "data.max_target_len=12",
    "data.max_train_examples=200",
    "data.batch_size=16",
    "data.eval_batch_size=32",
    "trainer.max_steps=6",
    "module.decode_examples=8",
    "scheduler.warmup_steps=2",
    "model.hidden_size=16",
    "model.ffn_size=32",
    "teacher.train.model.hidden_size=32",
    "teacher.train.model.attention_heads=2",
    "teacher.train.model.enc_layers=2",
    "teacher.train.model.dec_layers=2",
    "teacher.train.model.ffn_size=64",
    "teacher.train.trainer.max_steps=6",
    "teacher.train.module.decode_examples=8",
    "teacher.train.scheduler.warmup_steps=2",
]


def configs(args: argparse.Namespace) -> dict[str, DictConfig]:
    """The transformer student's and the GRU student's distill configs (the GRU still at the
    preset's hidden size: `size_gru` sets it), both checked before any work."""
    common = ["experiment=quickstart_transformer", "job=distillab.jobs.distill.run"]
    common += QUICK if args.quick else []
    mine = [o for o in args.overrides if not o.lstrip("+~").startswith(("model.", "model="))]
    overrides = {
        "transformer": [*common, *args.overrides],
        "gru": [*common, "model=gru_student", *mine],
    }
    root, stamp = Path(args.output_root).resolve(), time.time_ns()
    cfgs = {}
    for name, over in overrides.items():
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            cfg = compose("train", overrides=over)
        with open_dict(cfg):
            cfg.paths.output_root = str(root)
            cfg.paths.output_dir = str(root / "bench_gru_vs_transformer" / f"{name}_{stamp}")
        cfgs[name] = cfg
    # the preset's transformer keys merged into the GRU's node: back to the GRU preset's keys
    preset = OmegaConf.load(Path(CONF_DIR) / "model" / "gru_student.yaml")
    gru = cfgs["gru"]
    with open_dict(gru):
        for key in set(gru.model) - set(preset):
            del gru.model[key]
        gru.model.emb_dim = cfgs["transformer"].model.hidden_size  # the same embedding width
    for cfg in cfgs.values():
        validate(cfg)
    return cfgs


def params(cfg: DictConfig, r: Run) -> int:
    """The parameter count of `cfg.model` as the job builds it on `r`'s data and heads."""
    return sum(p.numel() for p in build_model(module_kwargs(cfg, r.data, r.heads)).parameters())


def size_gru(gru: DictConfig, r: Run, target: int) -> int:
    """Set the GRU's hidden size (a multiple of 8) whose count is closest to `target`."""
    best = None
    for hidden in range(8, 1025, 8):
        with open_dict(gru):
            gru.model.hidden_size = hidden
        n = params(gru, r)
        if best is None or abs(n - target) < abs(best[1] - target):
            best = (hidden, n)
        if n > target:
            break
    hidden, n = best
    with open_dict(gru):
        gru.model.hidden_size = hidden
    if abs(n - target) > TOLERANCE * target:
        raise ConfigError(
            f"no GRU hidden size gives {target:,} parameters within 10% (closest: "
            f"hidden_size={hidden}, {n:,}); change the transformer student's size"
        )
    return n


def run(args: argparse.Namespace) -> dict[str, float]:
    cfgs = configs(args)
    job = get_method(cfgs["transformer"].job)
    runs = {name: compose_run(cfg) for name, cfg in cfgs.items()}
    tf = runs["transformer"]
    results = {"transformer": job(tf)}  # trains the registry teacher the first time
    r: dict[str, float] = {"params.transformer_model": params(cfgs["transformer"], tf)}
    r["params.gru_model"] = size_gru(cfgs["gru"], tf, r["params.transformer_model"])
    log(
        f"students sized: transformer {r['params.transformer_model']:,} parameters, GRU "
        f"(emb {cfgs['gru'].model.emb_dim}, hidden {cfgs['gru'].model.hidden_size}) "
        f"{r['params.gru_model']:,}"
    )
    results["gru"] = job(runs["gru"])  # the same registry teacher, data, steps and seed
    for name, res in results.items():
        for key in ("val/ppl", "test/ppl", "model/params", "trainer/global_step"):
            r[f"{key}.{name}"] = res.metrics[key]
    for key, value in tf.teacher_metrics().items():
        r[f"teacher.{key}"] = value
    r["teacher.params"] = sum(p.numel() for p in tf.teacher.model.parameters())
    contexts = [
        (b.src, b.src_mask)
        for _, b in zip(range(args.decodes + 2), val_contexts(tf.data, 1), strict=False)
    ]  # two warm-up contexts, then the timed ones
    models = {
        name: Seq2SeqModule.from_checkpoint(res.checkpoint).model.eval()
        for name, res in results.items()
    }
    torch.set_num_threads(args.threads)  # torch's and onnxruntime's (export_rows)
    with tempfile.TemporaryDirectory(prefix="distillab-gvt-") as tmp:
        lat = export_rows(models, contexts, tf.data.bos_id, DECODE_LEN, 1.0, Path(tmp))
    r.update({k: v for k, v in lat.items() if k.startswith("latency_ms_per_token.")})
    cfg = cfgs["transformer"]
    r.update(
        {
            "meta.seed": cfg.seed,
            "meta.max_steps": cfg.trainer.max_steps,
            "meta.max_train_examples": cfg.data.max_train_examples,
            "meta.contexts": len(contexts) - 2,
            "meta.decode_tokens": DECODE_LEN,
            "meta.latency_threads": args.threads,
            "meta.mode": "quick" if args.quick else "full",
        }
    )
    return r


def table(r: dict[str, float]) -> str:
    lines = [
        f"Teacher (quickstart_transformer's, {r['teacher.params']:,} parameters): "
        f"val ppl {r.get('teacher.val/ppl', float('nan')):.2f}, "
        f"test ppl {r.get('teacher.test/ppl', float('nan')):.2f}. Both students: seed "
        f"{r['meta.seed']}, {r['meta.max_steps']} steps, {r['meta.max_train_examples']} "
        f"labelled pairs; latency: batch 1, {r['meta.decode_tokens']} greedy tokens, median "
        f"over {r['meta.contexts']} validation contexts, {r['meta.latency_threads']} thread(s).",
        "",
        "| student | val ppl | test ppl | parameters | eager ms/token | ONNX fp32 ms/token "
        "| ONNX int8 ms/token |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in STUDENTS:
        lat = lambda rt, name=name: r[f"latency_ms_per_token.{name}.{rt}"]  # noqa: E731
        lines.append(
            f"| {name} | {r[f'val/ppl.{name}']:.2f} | {r[f'test/ppl.{name}']:.2f} | "
            f"{r[f'model/params.{name}']:,} | {lat('eager'):.3f} | {lat('onnx_fp32'):.3f} | "
            f"{lat('onnx_int8'):.3f} |"
        )
    return "\n".join(lines)


def log(message: str) -> None:
    print(f"[{time.perf_counter() - START:6.1f}s] {message}", file=sys.stderr)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny data, models, budgets (seconds)")
    p.add_argument("--output-root", default="outputs", help="registry, data cache, run dirs")
    p.add_argument("--decodes", type=int, help="timed batch-1 decodes (default 30; quick 3)")
    p.add_argument("--threads", type=int, default=1, help="torch/onnxruntime threads, latency")
    p.add_argument("--json", type=Path, help="write the numbers to this file")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. trainer.max_steps=400")
    args = p.parse_args(argv)
    if args.decodes is None:
        args.decodes = 3 if args.quick else 30
    return args


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    try:
        r = run(args)
    except ConfigError as e:
        print(f"distillab: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    print(table(r))
    if args.json:
        args.json.write_text(json.dumps(r, indent=2) + "\n")
    return r


START = time.perf_counter()

if __name__ == "__main__":
    main()

"""distillab speed benchmark: training throughput, framework overhead, MFU, decoding latency.

    python benchmarks/run.py --quick --json /tmp/bench.json     # < 3 min on 2 CPU cores
    python benchmarks/run.py --device cuda                      # bf16-mixed on a GPU

Everything goes through the framework's own code paths (quickstart config, DataModule,
Seq2SeqModule / DistillationModule, a real pl.Trainer, TrainClock). Each training run does
`warmup + steps` optimiser steps; the clock is reset after the warm-up steps (WarmClock).
See benchmarks/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import io
import json
import logging
import platform
import statistics
import sys
import tempfile
import time
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode
from transformers.pytorch_utils import Conv1D

from distillab.compose.heads import task_heads
from distillab.compose.modules import distillation_module, module_kwargs
from distillab.compose.teachers import teacher_cache, teacher_job_config
from distillab.compress.quantize import as_linear, replace_children
from distillab.data.batching import collate
from distillab.decoding import Greedy
from distillab.modules.callbacks import TrainClock
from distillab.modules.optim import param_groups, warmup_schedule
from distillab.modules.seq2seq import Seq2SeqModule
from distillab.teachers import CachedTeacher, CheckpointTeacher
from distillab.train import CONF_DIR
from distillab.utils.runtime import keep_freed_memory

ROOT = Path(__file__).resolve().parents[1]
DECODE_LEN = 24  # greedy steps per decode (quickstart's max_target_len)
PAIR = ("teacher", "student")
SKIPPED_PRESETS = "the experiment's students are not GRUs"
GREEDY = Greedy()


class WarmClock(TrainClock):
    """TrainClock whose counts restart after `warmup` optimiser steps (warm-up discarded)."""

    def __init__(self, warmup: int, cuda: bool) -> None:
        super().__init__()
        self.warmup, self.cuda = warmup, cuda

    def _sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if trainer.global_step == self.warmup:
            self._sync()
            self.tokens, self.train_s = 0, 0.0
            self._start()

    def on_train_end(self, trainer, pl_module) -> None:
        self._sync()
        super().on_train_end(trainer, pl_module)


def make_config(args: argparse.Namespace, out: Path) -> DictConfig:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        experiment = getattr(args, "experiment", "quickstart")  # e.g. quickstart_transformer
        cfg = compose("train", overrides=[f"experiment={experiment}", *args.override])
    with open_dict(cfg):
        cfg.paths.output_root = str(out)
        cfg.paths.output_dir = str(out / "run")
        cfg.paths.cache_dir = str(args.cache_dir)
        cfg.distill.teacher_outputs = "online"
    return cfg


def fit(cfg: DictConfig, module: pl.LightningModule, dm, args) -> float:
    """Train `module` for warmup + steps with a real Trainer; tokens/s after the warm-up."""
    clock = WarmClock(args.warmup, args.device == "cuda")
    gpu = {"accelerator": "gpu", "precision": "bf16-mixed"} if args.device == "cuda" else {}
    trainer = instantiate(
        cfg.trainer,
        max_steps=args.warmup + args.steps,
        max_epochs=-1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=cfg.paths.output_dir,
        callbacks=[clock],
        **gpu,
    )
    trainer.fit(module, datamodule=dm)
    module.bench_trainer = trainer  # the teacher's weights are saved from it
    return clock.tokens_per_s


def raw_loop(cfg: DictConfig, dm, args) -> float:
    """The student trained by a plain PyTorch loop: same model, init, batches, loss, AdamW
    groups, LR schedule, grad clipping; tokens/s over the same steps after the same warm-up."""
    pl.seed_everything(cfg.seed, verbose=False)
    module = Seq2SeqModule(
        **module_kwargs(cfg, dm, task_heads(cfg.task, dm))
    )  # the same initial weights
    hp, model = module.hparams, module.model.to(args.device).train()
    o, s = hp.optimizer, hp.scheduler  # the job's optimiser and schedule, written out by hand
    opt = torch.optim.AdamW(
        param_groups(model, o["weight_decay"]), lr=o["lr"], betas=tuple(o["betas"])
    )
    total = args.warmup + args.steps
    sched = warmup_schedule(opt, total, s["name"], s["warmup_steps"])
    cuda = args.device == "cuda"
    loader, step, tokens, t0 = dm.train_dataloader(), 0, 0, 0.0
    while step < total:
        for batch in loader:
            src, mask = batch.src.to(args.device), batch.src_mask.to(args.device)
            tgt_in, tgt_out = batch.tgt_in.to(args.device), batch.tgt_out.to(args.device)
            with torch.autocast(args.device, torch.bfloat16, enabled=cuda):
                logits = model(src, mask, tgt_in).logits
            loss = F.cross_entropy(
                logits.flatten(0, 1).float(), tgt_out.flatten(), ignore_index=hp.pad_id
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            tokens += batch.n_tokens
            if step == args.warmup:
                if cuda:
                    torch.cuda.synchronize()
                tokens, t0 = 0, time.perf_counter()
            if step == total:
                break
    if cuda:
        torch.cuda.synchronize()
    return tokens / (time.perf_counter() - t0)


def flops_per_token(model: nn.Module, dm, pad_id: int, n_batches: int = 8) -> float:
    """Training FLOPs (forward + backward, counted by FlopCounterMode on CPU, where nn.GRU
    decomposes into counted matmuls) per target token, over the first training batches."""
    model = copy.deepcopy(model).cpu().train()
    flops, tokens = 0, 0
    for i, batch in enumerate(dm.train_dataloader()):
        if i == n_batches:
            break
        with FlopCounterMode(display=False) as counter:
            args = (batch.src, batch.src_mask, batch.tgt_in)
            logits = model(*args, conv=batch.conversation).logits
            loss = F.cross_entropy(
                logits.flatten(0, 1), batch.tgt_out.flatten(), ignore_index=pad_id
            )
            loss.backward()
        flops += counter.get_total_flops()
        tokens += batch.n_tokens
    return flops / tokens


def matmul_peak(device: str, n: int = 1024, reps: int = 10, trials: int = 5) -> float:
    """Best FLOP/s of n x n matmuls (fp32 on CPU, bf16 on GPU) on the current threads."""
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    if device == "cuda":
        n = 8192
    a, b = (
        torch.randn(n, n, device=device, dtype=dtype),
        torch.randn(n, n, device=device, dtype=dtype),
    )
    best = float("inf")
    for _ in range(trials + 1):  # the first trial warms up
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0) if _ else float("inf")
    return 2 * n**3 * reps / best


def val_contexts(dm, batch: int) -> DataLoader:
    """Validation contexts in their fixed order, `batch` at a time (what the decodes read)."""
    ids = dict(pad_id=dm.pad_id, bos_id=dm.bos_id, eos_id=dm.eos_id)
    return DataLoader(dm.datasets["val"], batch, collate_fn=partial(collate, **ids))


def decode_latency(
    models: dict[str, nn.Module], dm, hp, devices: dict[str, str], batch: int, n: int
) -> dict[str, float]:
    """Median ms of one greedy decode of exactly DECODE_LEN tokens (eos_id=-1 is never
    produced, so every model decodes the same length) over real validation contexts. The
    models take turns on each context, so drift in machine load hits them alike."""
    loader = val_contexts(dm, batch)
    models = {name: model.to(devices[name]).eval() for name, model in models.items()}
    times: dict[str, list[float]] = {name: [] for name in models}
    for i, b in enumerate(loader):
        if i == n + 2:
            break
        for name, model in models.items():
            dev = devices[name]
            src, mask = b.src.to(dev), b.src_mask.to(dev)
            t0 = time.perf_counter()
            out = GREEDY(model, src, mask, bos_id=hp.bos_id, eos_id=-1, max_len=DECODE_LEN)
            if dev == "cuda":
                torch.cuda.synchronize()
            assert out.shape[1] == DECODE_LEN
            if i >= 2:  # two warm-up decodes
                times[name].append(time.perf_counter() - t0)
    return {name: 1000 * statistics.median(ts) for name, ts in times.items()}


def decode_flops(model: nn.Module, dm, hp, n: int = 8) -> float:
    """FLOPs (FlopCounterMode) of one batch-1 greedy decode of DECODE_LEN tokens, mean over the
    first `n` validation contexts: the arithmetic a latency ratio would follow if both models
    ran at the same efficiency."""
    loader = val_contexts(dm, 1)
    model = copy.deepcopy(model).cpu().eval()
    with FlopCounterMode(display=False) as counter:
        for i, b in enumerate(loader):
            if i == n:
                break
            GREEDY(model, b.src, b.src_mask, bos_id=hp.bos_id, eos_id=-1, max_len=DECODE_LEN)
    return counter.get_total_flops() / n


def state_bytes(model: nn.Module) -> int:
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes


def quantize_int8(model: nn.Module) -> nn.Module:
    """Dynamic int8 of the GRU and Linear layers (GPT-2's Conv1D first turned into the equal
    Linear, as compression does); embeddings stay float."""
    model = copy.deepcopy(model).cpu().eval()
    replace_children(model, lambda m: type(m) is Conv1D, as_linear)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {nn.GRU, nn.Linear}, dtype=torch.qint8)


def export_latency_rows(
    models: dict[str, nn.Module], dm, hp, n: int, peak: float, workdir: Path
) -> dict[str, float]:
    """Compression and deployment (issue 11): per-token batch-1 decode latency of each model in
    eager PyTorch, ONNX fp32 and ONNX int8, and its distance from the arithmetic bound
    (benchmarks/export_latency.py), on real validation contexts."""
    path = Path(__file__).with_name("export_latency.py")
    spec = importlib.util.spec_from_file_location("distillab_export_latency", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    loader = val_contexts(dm, 1)
    contexts = [(b.src, b.src_mask) for b, _ in zip(loader, range(n + 2), strict=False)]
    models = {name: copy.deepcopy(m).cpu() for name, m in models.items()}
    return bench.export_rows(models, contexts, hp.bos_id, DECODE_LEN, peak, workdir)


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as every job does (distillab.compose.rundir.prepare)
    r: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="distillab-bench-") as tmp:
        out = Path(tmp)
        cfg = make_config(args, out)
        with open_dict(cfg):
            cfg.data.batch_size = args.batch_size
        pl.seed_everything(cfg.seed, verbose=False)
        dm = instantiate(cfg.data, conversation_bag=bool(cfg.task.get("conversation_bag")))
        dm.load()
        tcfg = teacher_job_config(cfg)
        log = lambda m: print(f"[{time.perf_counter() - START:6.1f}s] {m}", file=sys.stderr)  # noqa: E731

        log("teacher: training (timed after warm-up)")
        pl.seed_everything(cfg.seed, verbose=False)
        teacher = Seq2SeqModule(**module_kwargs(tcfg, dm, task_heads(tcfg.task, dm)))
        r["tokens_per_s.teacher"] = fit(tcfg, teacher, dm, args)
        ckpt = str(out / "teacher.ckpt")
        teacher.bench_trainer.save_checkpoint(ckpt)
        teachers = [CheckpointTeacher(ckpt)]

        log("distill-online")
        pl.seed_everything(cfg.seed, verbose=False)
        r["tokens_per_s.distill_online"] = fit(
            cfg, distillation_module(cfg, dm, task_heads(cfg.task, dm), teachers), dm, args
        )

        log("distill-cached: building the teacher cache (not timed)")
        with open_dict(cfg):
            cfg.paths.cache_dir = str(out / "cache")
        served = CachedTeacher(teachers[0], teacher_cache(cfg, dm, teachers[0]))
        r["cache.bytes_per_token"] = served.cache.bytes_per_token
        pl.seed_everything(cfg.seed, verbose=False)
        student = Seq2SeqModule(
            **module_kwargs(cfg, dm, task_heads(cfg.task, dm))
        )  # for MFU and latency below

        def lightning_student() -> float:
            pl.seed_everything(cfg.seed, verbose=False)
            return fit(
                cfg, Seq2SeqModule(**module_kwargs(cfg, dm, task_heads(cfg.task, dm))), dm, args
            )

        def cached_student() -> float:
            pl.seed_everything(cfg.seed, verbose=False)
            return fit(
                cfg, distillation_module(cfg, dm, task_heads(cfg.task, dm), [served]), dm, args
            )  # as in jobs.distill

        runs = {
            "student": lightning_student,
            "student_raw": lambda: raw_loop(cfg, dm, args),
            "distill_cached": cached_student,
        }
        rounds: dict[str, list[float]] = {name: [] for name in runs}
        for rep in range(args.repeats):  # interleaved, so drift in machine load hits all three;
            names = list(runs)  # the order rotates, so no run is always first or last
            order = names[rep % 3 :] + names[: rep % 3]
            log(f"round {rep + 1}: {', '.join(order)}")
            for name in order:
                rounds[name].append(runs[name]())
        for name, values in rounds.items():
            r[f"tokens_per_s.{name}"] = max(values)  # best round: least disturbed by other load
            r[f"rounds.tokens_per_s.{name}"] = values
        # ratios: median over rounds of the paired (same-round) ratio, robust to one lucky run
        pairs = list(
            zip(rounds["student"], rounds["student_raw"], rounds["distill_cached"], strict=True)
        )
        r["ratio.framework_over_raw"] = statistics.median(s / raw for s, raw, _ in pairs)
        r["ratio.distill_cached_over_student"] = statistics.median(s / c for s, _, c in pairs)

        log("MFU: FLOP count and matmul peak")
        peak = matmul_peak(args.device)
        r["peak_flops"] = peak
        for name, m in (("student", student.model), ("teacher", teacher.model)):
            fpt = flops_per_token(m, dm, dm.pad_id)
            r[f"flops_per_token.{name}"] = fpt
            r["mfu.train" + ("" if name == "student" else "_teacher")] = (
                fpt * r[f"tokens_per_s.{name}"] / peak
            )

        log("greedy-decoding latency")
        int8 = quantize_int8(student.model)
        models = {"teacher": teacher.model, "student": student.model, "student_int8": int8}
        # the model presets (gru_teacher vs gru_student, random weights: latency only), at the
        # data's vocabulary and at the default data config's (the presets' own setting); only
        # next to GRU students (an experiment of another family has no such presets)
        default_vocab = OmegaConf.load(Path(CONF_DIR) / "data" / "chitchat.yaml").vocab_size
        r["meta.default_vocab"] = default_vocab
        presets = {n: OmegaConf.load(Path(CONF_DIR) / "model" / f"gru_{n}.yaml") for n in PAIR}
        r["meta.student_model"] = cfg.model._target_
        if cfg.model._target_ != presets["student"]._target_:
            log(f"model presets gru_teacher / gru_student: skipped ({SKIPPED_PRESETS})")
            presets = {}
        for name, preset in presets.items():
            for suffix, vocab in (("", len(dm.tokenizer)), ("_default_vocab", default_vocab)):
                models[f"preset_{name}{suffix}"] = instantiate(
                    preset, vocab_size=vocab, pad_id=dm.pad_id
                )
        devices = {name: args.device for name in models}
        devices["student_int8"] = "cpu"  # int8 kernels: CPU only
        for batch, n, suffix in ((1, args.decodes, ""), (32, 5, "_b32")):
            for name, ms in decode_latency(models, dm, student.hparams, devices, batch, n).items():
                r[f"latency_ms.{name}{suffix}"] = ms
        r["bytes.student"], r["bytes.student_int8"] = state_bytes(student.model), state_bytes(int8)
        log("export latency: eager vs ONNX fp32 / int8, per token at batch 1")
        exported = {"teacher": teacher.model, "student": student.model}
        r.update(export_latency_rows(exported, dm, student.hparams, args.decodes, peak, out))
        pairs = {  # ratio key prefix: (teacher, student)
            "": ("teacher", "student"),
            "preset_": ("preset_teacher", "preset_student"),
            "preset_default_vocab_": (
                "preset_teacher_default_vocab",
                "preset_student_default_vocab",
            ),
        }
        for pair, (t, s) in pairs.items():
            if t not in models:  # the presets, skipped
                continue
            r[f"ratio.{pair}teacher_over_student_latency"] = (
                r[f"latency_ms.{t}"] / r[f"latency_ms.{s}"]
            )
            for name in (t, s):
                r[f"flops_per_decode.{name}"] = decode_flops(models[name], dm, student.hparams)
            r[f"ratio.{pair}teacher_over_student_decode_flops"] = (
                r[f"flops_per_decode.{t}"] / r[f"flops_per_decode.{s}"]
            )
    r.update(
        {
            "meta.device": args.device if args.device == "cpu" else torch.cuda.get_device_name(0),
            "meta.cpu": platform.processor() or platform.machine(),
            "meta.threads": torch.get_num_threads(),
            "meta.torch": torch.__version__,
            "meta.lightning": pl.__version__,
            "meta.mode": "quick" if args.quick else "full",
            "meta.batch_size": args.batch_size,
            "meta.warmup_steps": args.warmup,
            "meta.timed_steps": args.steps,
            "meta.repeats": args.repeats,
            "meta.wall_s": time.perf_counter() - START,
        }
    )
    return r


def table(r: dict[str, Any]) -> str:
    def row(name: str, value: str, target: str = "", met: bool | None = None) -> str:
        return f"| {name} | {value} | {target} | {'' if met is None else 'yes' if met else 'NO'} |"

    tps = lambda k: f"{r[f'tokens_per_s.{k}']:,.0f}"  # noqa: E731
    fw, cached = r["ratio.framework_over_raw"], r["ratio.distill_cached_over_student"]

    def speedup(pair: str) -> tuple[str, str, str, bool]:
        """Latency ratio of a teacher/student pair, next to its decode-FLOPs ratio."""
        x = r[f"ratio.{pair}teacher_over_student_latency"]
        flops = r[f"ratio.{pair}teacher_over_student_decode_flops"]
        return f"{x:.2f}x (FLOPs {flops:.1f}x)", ">= 10x", x >= 10

    lat = lambda k: f"{r[f'latency_ms.{k}']:.2f} ms (b32: {r[f'latency_ms.{k}_b32']:.1f} ms)"  # noqa: E731
    lines = [
        "| metric | value | target | met |",
        "|---|---|---|---|",
        row("train tokens/s, teacher", tps("teacher")),
        row("train tokens/s, student (Lightning)", tps("student")),
        row("train tokens/s, student (plain PyTorch loop)", tps("student_raw")),
        row("train tokens/s, distill-online", tps("distill_online")),
        row("train tokens/s, distill-cached", tps("distill_cached")),
        row("framework / plain loop throughput", f"{fw:.3f}x", ">= 0.95x", fw >= 0.95),
        row("distill-cached step / student step", f"{cached:.3f}x", "<= 1.10x", cached <= 1.10),
        row("teacher-output cache, bytes per target token", f"{r['cache.bytes_per_token']:.1f}"),
        row("MFU train, student", f"{100 * r['mfu.train']:.2f}%"),
        row("MFU train, teacher", f"{100 * r['mfu.train_teacher']:.2f}%"),
        row("matmul peak (same run)", f"{r['peak_flops'] / 1e9:,.1f} GFLOP/s"),
        row(f"greedy latency, teacher, 1 context x {DECODE_LEN} tok", lat("teacher")),
        row(f"greedy latency, student, 1 context x {DECODE_LEN} tok", lat("student")),
        row(f"greedy latency, int8 student, 1 context x {DECODE_LEN} tok", lat("student_int8")),
        row("teacher / student latency", *speedup("")),
    ]
    if "latency_ms.preset_teacher" not in r:
        lines.append(row("model presets gru_teacher / gru_student", f"skipped: {SKIPPED_PRESETS}"))
    else:
        lines += [
            row(f"greedy latency, preset gru_teacher, 1 x {DECODE_LEN} tok", lat("preset_teacher")),
            row(f"greedy latency, preset gru_student, 1 x {DECODE_LEN} tok", lat("preset_student")),
            row("preset teacher / student latency", *speedup("preset_")),
            row(
                f"preset gru_teacher / gru_student at vocab {r['meta.default_vocab']} "
                f"({r['latency_ms.preset_teacher_default_vocab']:.1f} / "
                f"{r['latency_ms.preset_student_default_vocab']:.1f} ms)",
                *speedup("preset_default_vocab_"),
            ),
        ]
    lines += [
        row(
            "student state_dict fp32 -> int8",
            f"{r['bytes.student'] / 1e6:.2f} MB -> {r['bytes.student_int8'] / 1e6:.2f} MB",
        ),
    ]
    meta = ", ".join(
        f"{k[5:]}={v:.0f}" if k == "meta.wall_s" else f"{k[5:]}={v}"
        for k, v in r.items()
        if k.startswith("meta.")
    )
    return "\n".join(lines) + f"\n\n{meta}\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer steps (< 3 min on 2 CPU cores)")
    p.add_argument("--json", type=Path, help="write the numbers to this file")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--warmup", type=int, help="untimed steps per run (default 5; quick 3)")
    p.add_argument("--steps", type=int, help="timed steps per run (default 100; quick 50)")
    p.add_argument("--repeats", type=int, help="interleaved rounds (default 7)")
    p.add_argument("--decodes", type=int, help="batch-1 decodes per model (median)")
    p.add_argument("--cache-dir", default=str(ROOT / "outputs" / "cache"), help="data cache")
    p.add_argument("--experiment", default="quickstart", help="the preset whose models run")
    p.add_argument("override", nargs="*", help="extra Hydra overrides, e.g. model.hidden_size=96")
    args = p.parse_args(argv)
    defaults = dict(warmup=3, steps=50, repeats=7, decodes=30) if args.quick else {}
    defaults = {**dict(warmup=5, steps=100, repeats=7, decodes=60), **defaults}
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", module="pytorch_lightning")
    warnings.filterwarnings("ignore", module="lightning_fabric")
    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    results = run(args)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


START = time.perf_counter()

if __name__ == "__main__":
    main()

"""What on-policy distillation costs: training tokens/s (and steps/s) of an on-policy
distillation step (the student samples its responses, the teacher scores them, the student
learns) against an off-policy one (gold targets), at quickstart size (vocab 4000, student
emb 32 / hidden 64, teacher emb 128 / hidden 256, batch 64, chitchat batches).

    python benchmarks/onpolicy.py [--steps 20] [--warmup 3] [--threads 2] [--json FILE]
        [--student-ckpt CKPT] [--teacher-ckpt CKPT] [hydra overrides...]

The step is the framework's own pieces: `Seq2Seq` models, `modules.onpolicy.sampled_batch`
(the default `Sample` strategy, max length data.max_target_len), the teacher's `LogitsOutput`
and the `LogitKD` term, AdamW. Without checkpoints the models have fresh weights: an untrained
student rarely samples EOS, so its responses run to the maximum length (the on-policy tokens
per step are then more than gold's); pass trained checkpoints for representative lengths.
Off- and on-policy steps alternate (so load from other processes hits both alike); each
figure is the median over steps.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from distillab.checkpoint import load_model
from distillab.data.batch import Batch
from distillab.decoding import Sample
from distillab.losses.context import LossContext
from distillab.losses.terms import LogitKD
from distillab.models import Seq2Seq
from distillab.modules.onpolicy import sampled_batch
from distillab.teachers.outputs import LogitsOutput
from distillab.train import CONF_DIR


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--student-ckpt")
    ap.add_argument("--teacher-ckpt")
    ap.add_argument("--json")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["experiment=quickstart", *args.overrides])
    dm = instantiate(cfg.data)
    dm.load()
    v, pad = len(dm.tokenizer), dm.pad_id

    def model(ckpt, emb, hidden):
        if ckpt:
            return load_model(ckpt).train()
        return Seq2Seq(v, pad, emb_dim=emb, hidden_size=hidden).train()

    student = model(args.student_ckpt, cfg.model.emb_dim, cfg.model.hidden_size)
    t_model = cfg.teacher.train.model
    teacher = model(args.teacher_ckpt, t_model.emb_dim, t_model.hidden_size).eval()
    teacher.requires_grad_(False)
    opt = torch.optim.AdamW(student.parameters(), lr=1e-3)
    kd, sample = LogitKD(), Sample()
    max_len = int(cfg.data.max_target_len)

    def step(batch: Batch, on_policy: bool) -> tuple[float, int]:
        start = time.perf_counter()
        if on_policy:
            batch = sampled_batch(student, batch, sample, dm.bos_id, dm.eos_id, pad, max_len)
        args_ = (batch.src, batch.src_mask, batch.tgt_in)
        with torch.no_grad():
            t_logits = teacher(*args_).logits
        out = student(*args_)
        ctx = LossContext(out, batch, pad, LogitsOutput(logits=[t_logits], weights=[1.0]))
        loss = kd(ctx)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return time.perf_counter() - start, int(batch.tgt_mask.sum())

    loader = iter(dm.train_dataloader())
    times: dict[str, list[float]] = {"off_policy": [], "on_policy": []}
    tokens: dict[str, list[int]] = {"off_policy": [], "on_policy": []}
    for i in range(args.warmup + args.steps):
        batch = next(loader)
        for name in ("off_policy", "on_policy"):
            secs, n = step(batch, name == "on_policy")
            if i >= args.warmup:
                times[name].append(secs)
                tokens[name].append(n)
    result = {}
    for name in times:
        t = statistics.median(times[name])
        n = statistics.median(tokens[name])
        result[name] = {"step_s": t, "tokens_per_step": n, "tokens_per_s": n / t}
    result["on_vs_off_step_time"] = result["on_policy"]["step_s"] / result["off_policy"]["step_s"]
    print("| step | s/step | target tokens/step | tokens/s |\n|---|---|---|---|")
    for name in ("off_policy", "on_policy"):
        r = result[name]
        print(
            f"| {name} | {r['step_s']:.3f} | {r['tokens_per_step']:.0f} | {r['tokens_per_s']:.0f} |"
        )
    print(f"\non-policy step time / off-policy: {result['on_vs_off_step_time']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()

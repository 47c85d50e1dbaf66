"""How noisy is a cached KD target? Offline, before any training: the per-token variance
E||t - p||^2 of the sparse target t of the teacher-output cache (the noise in the cached KD
gradient q - t; the top-k is exact, only the tail is estimated) under tail estimators, on the
quickstart's registry teacher and the students' training target tokens.

    python benchmarks/cache_variance.py [--output-root outputs] [--temperatures 1 2]

The draws are systematic (`codecs.draws.add_tail_draws`): a token of proposal share g is drawn
floor or ceil of S g times, so with weight w per draw the variance is exactly
sum_v w_v^2 a_v, a_v = frac(S g_v) (1 - frac(S g_v)) (no Monte Carlo). Estimators (S draws,
top-k; t = top-k + c + sum_i w_{v_i} e_{v_i}, E t = p):

- plain: c = 0, draws from p_tail / m, w = m / S (the compact codec).
- cv-p: c = lam m pi / Pi_tail (a global prior pi over the tail), draws from p_tail / m,
  w = m (1 - c_v / p_v) / S (the control variate of the issue; lam per token, fitted).
- cv-d: the same c, draws from |p - c| / |p - c|_1 over the tail, w = sign(p - c) |p - c|_1 / S
  (draws of the residual: bounded weights, one sign bit per draw instead of a value).

Priors pi: `mean` (the mean softened teacher distribution over the target tokens), `tail`
(the mean of each token's tail distribution p_tail / m), `top1` (the mean tail given the top-1
token: a [V, V] table, too big to store; a bound on what a token-conditioned prior could do).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from distillab.compose import compose as compose_run
from distillab.train import CONF_DIR

LAMS = torch.linspace(0, 1.5, 16)  # the per-token lam grid (4 bits)


def record_bytes(k: int, s: int, value_bits: int = 6, tail_bits: int = 4, id_bits: int = 12):
    """The compact codec's record at top-k + s draws (bit planes of 8 values); the residual
    codec's is `record_bytes(k, s, tail_bits=1) + 4`."""
    planes = lambda n, w: w * -(-n // 8)  # noqa: E731
    return 4 + planes(k - 1, value_bits) + planes(s, tail_bits) + planes(k + s, id_bits)


def teacher_probs(root: Path, temperature: float, extra: list[str]):
    """Yield [n, V] softened teacher probabilities of the students' training target tokens."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["experiment=quickstart", *extra])
    with open_dict(cfg):
        cfg.paths.output_root = str(root)
        cfg.paths.output_dir = str(root / "bench_cache_variance")
    run = compose_run(cfg)
    teacher, dm = run.teacher, run.distill_data
    with torch.no_grad():
        for batch in dm.plain_loader("train"):
            (logits,) = teacher.outputs(batch).logits
            p = torch.softmax(logits.float() / temperature, -1)
            yield p[batch.tgt_mask].double()


def tail_of(p: torch.Tensor, k: int):
    """(tail probabilities with the top-k zeroed, tail mass m, top-k mask, top-1 ids)."""
    top = p.topk(k, -1).indices
    in_k = torch.zeros_like(p, dtype=torch.bool).scatter(-1, top, True)
    pt = p.masked_fill(in_k, 0.0)
    return pt, pt.sum(-1, keepdim=True), in_k, top[:, 0]


def systematic_var(w: torch.Tensor, g: torch.Tensor, s: int) -> torch.Tensor:
    """Per-token sum_v w_v^2 frac(S g_v)(1 - frac(S g_v)) ([n, V] -> [n])."""
    x = s * g
    f = x - x.floor()
    return (w * w * f * (1 - f)).sum(-1)


def cv_vars(pt, m, in_k, prior, s):
    """Per-token variance [n, len(LAMS)] of cv-p and cv-d at each lam of the grid."""
    pr = prior.masked_fill(in_k, 0.0)
    c1 = m * pr / pr.sum(-1, keepdim=True).clamp(min=1e-300)  # lam = 1
    g_p = pt / m.clamp(min=1e-300)
    out_p, out_d = [], []
    for lam in LAMS.tolist():
        c = lam * c1
        ratio = torch.where(pt > 0, c / pt.clamp(min=1e-300), 0.0)
        out_p.append(systematic_var(m * (1 - ratio) / s, g_p, s))
        d = pt - c
        l1 = d.abs().sum(-1, keepdim=True)
        out_d.append(systematic_var(l1.expand_as(d) / s, d.abs() / l1.clamp(min=1e-300), s))
    return torch.stack(out_p, -1), torch.stack(out_d, -1)


def measure(root: Path, t: float, settings, extra, max_tokens: int, priors) -> dict:
    chunks, have = [], 0
    for p in teacher_probs(root, t, extra):
        chunks.append(p)
        have += len(p)
        if have >= max_tokens:
            break
    p_all = torch.cat(chunks)[:max_tokens]
    n, vocab = p_all.shape
    mean = {"mean": p_all.mean(0)}
    res: dict = {"tokens": n}
    for k, s in settings:
        tails = torch.zeros(vocab, dtype=torch.float64)
        cond = torch.zeros(vocab if "top1" in priors else 0, vocab, dtype=torch.float64)
        for p in p_all.split(4096):
            pt, m, _, top1 = tail_of(p, k)
            tails += (pt / m).sum(0)
            if len(cond):
                cond.index_add_(0, top1, pt / m)
        pri = {**mean, "tail": tails / n}
        tot = {"plain": 0.0, "mass": 0.0}
        for p in p_all.split(2048):
            pt, m, in_k, top1 = tail_of(p, k)
            tot["mass"] += float(m.sum())
            g = pt / m.clamp(min=1e-300)
            tot["plain"] += float(systematic_var((m / s).expand_as(pt), g, s).sum())
            for name in priors:
                prior = cond[top1] if name == "top1" else pri[name].expand_as(p)
                vp, vd = cv_vars(pt, m, in_k, prior, s)
                i1 = int((LAMS - 1).abs().argmin())
                for est, v in (("cv-p", vp), ("cv-d", vd)):
                    tot[f"{est}/{name}/lam1"] = tot.get(f"{est}/{name}/lam1", 0.0) + float(
                        v[:, i1].sum()
                    )
                    tot[f"{est}/{name}/fit"] = tot.get(f"{est}/{name}/fit", 0.0) + float(
                        v.min(-1).values.sum()
                    )
        row = {key: v / n for key, v in tot.items()}
        row["bytes"] = record_bytes(k, s)
        row["bytes_residual"] = record_bytes(k, s, tail_bits=1) + 4
        res[f"top-{k}+{s}"] = row
        print(f"T={t:g} top-{k} + {s}: " + json.dumps(row), flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--output-root", default="outputs")
    ap.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 2.0])
    ap.add_argument("--settings", nargs="+", default=["24:16", "32:32", "32:96", "16:8", "8:36"])
    ap.add_argument("--priors", nargs="+", default=["mean", "tail", "top1"])
    ap.add_argument("--max-tokens", type=int, default=8192, help="the first N target tokens")
    ap.add_argument("--json", default=None)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    settings = [tuple(int(x) for x in s.split(":")) for s in args.settings]
    root = Path(args.output_root).resolve()
    out = {
        f"T{t:g}": measure(root, t, settings, args.overrides, args.max_tokens, args.priors)
        for t in args.temperatures
    }
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()

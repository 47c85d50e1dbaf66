"""Does the teacher-output cache cost quality, and how small is it? Distil the quickstart
student with the teacher run online and from its cache under each codec setting, at T=1 and
T=2, same seed, budget and batches; compare validation perplexity, and report each cache's
bytes per target token, size on disk and build time, and what its quantisation changes in the
teacher's probabilities (against the exact fp16 cache of the same temperature).

    python benchmarks/cache_quality.py [--output-root outputs] [--temperatures 1 2]
        [--settings compact small exact] [--seeds 42] [--json FILE] [overrides ...]

Settings (codec, top-k, tail draws): compact = the default codec at top-24 + 16 draws; small =
the same codec at top-16 + 8 draws (<= 64 B per token); exact = fp16 + int32 at top-32 + 32
(the cache before codecs); residual = the control-variate codec at top-16 + 32 draws (96 B),
residual-k8 at top-8 + 40 (91 B), residual-small at top-8 + 16 (52 B). The teacher comes from
the registry under --output-root (trained there first if absent, as the quickstart does).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from distillab.teachers.cache import TeacherCache
from distillab.train import CONF_DIR, run_job

SETTINGS = {  # name: (codec option, topk, tail_samples)
    "compact": ("compact", 24, 16),
    "small": ("compact", 16, 8),
    "exact": ("exact", 32, 32),
    "residual": ("residual", 16, 32),
    "residual-k8": ("residual", 8, 40),
    "residual-small": ("residual", 8, 16),
}


def distil(root: Path, seed: int, temperature: float, setting: str | None, extra: list[str]):
    overrides = [
        "experiment=quickstart",
        "job=distillab.jobs.distill.run",
        f"seed={seed}",
        f"distill.objective.temperature={temperature}",
        *extra,
    ]
    if setting is None:
        overrides.append("distill.teacher_outputs=online")
    else:
        codec, k, s = SETTINGS[setting]
        overrides += ["distill.teacher_outputs=cached", f"distill/codec={codec}"]
        overrides += [f"distill.topk={k}", f"distill.tail_samples={s}"]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_root = str(root)
        name = f"{setting or 'online'}_T{temperature:g}_{time.time_ns()}"
        cfg.paths.output_dir = str(root / "bench_cache_quality" / name)
    start = time.perf_counter()
    metrics = run_job(cfg)
    row = {"val/ppl": metrics["val/ppl"], "time/train_s": metrics["time/train_s"]}
    row["wall_s"] = time.perf_counter() - start
    if setting is not None:
        cache = find_cache(Path(cfg.paths.cache_dir), setting, temperature)
        row.update(
            cache=str(cache.path),
            bytes_per_token=cache.bytes_per_token,
            size_bytes=cache.size_bytes,
            tokens=cache.tokens,
            build_s=cache.info["build_s"],
        )
    return row


def find_cache(cache_dir: Path, setting: str, temperature: float) -> TeacherCache:
    """The cache of a setting at a temperature (one teacher per --output-root)."""
    codec, k, s = SETTINGS[setting]
    want = f"distillab.teachers.codecs.{codec}."
    for info in sorted((cache_dir / "teacher_outputs").glob("*/info.json")):
        i = json.loads(info.read_text())
        if (
            i["codec"]["_target_"].startswith(want)
            and (i["k"], i["tail_samples"]) == (k, s)
            and i["softening_temperature"] == temperature
        ):
            return TeacherCache(info.parent)
    raise FileNotFoundError(f"no cache of {setting} at T={temperature} under {cache_dir}")


def codec_error(cache: TeacherCache, exact: TeacherCache) -> dict[str, float]:
    """The cache's decoded top-k probabilities against the exact (fp16) cache's, token by
    token where both hold the same top ids: mean signed error (bias) and mean absolute error
    per probability, and the signed error of the tail mass 1 - sum(top-k)."""
    tokens = np.arange(cache.tokens)
    k = cache.k
    v, i = cache.decode(tokens)
    ve, ie = exact.decode(tokens)
    same = (i[:, :k] == ie[:, :k]).all(1)
    p, pe = v[same, :k].float().exp(), ve[same, :k].float().exp()
    return {
        "tokens_compared": int(same.sum()),
        "p_bias": float((p - pe).mean()),
        "p_abs_err": float((p - pe).abs().mean()),
        "tail_mass_bias": float(((1 - p.sum(1)) - (1 - pe.sum(1))).mean()),
        "kl_exact_to_decoded": float(sparse_kl(pe, p)),
    }


def sparse_kl(pe: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Mean KL between the two top-k distributions, each with its tail mass as one more bin."""
    a = torch.cat([pe, (1 - pe.sum(1, keepdim=True)).clamp(min=1e-8)], 1)
    b = torch.cat([p, (1 - p.sum(1, keepdim=True)).clamp(min=1e-8)], 1)
    return (a * (a.clamp(min=1e-12).log() - b.clamp(min=1e-12).log())).sum(1).mean()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--output-root", default="outputs")
    ap.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 2.0])
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[42], help="42: the quickstart's")
    ap.add_argument("--json", default=None)
    ap.add_argument(
        "overrides", nargs="*", help="extra Hydra overrides, e.g. trainer.max_steps=200"
    )
    args = ap.parse_args()
    root = Path(args.output_root).resolve()
    res: dict[tuple, dict] = {}
    for seed in args.seeds:
        for t in args.temperatures:
            for setting in [None, *args.settings]:
                row = distil(root, seed, t, setting, args.overrides)
                res[seed, t, setting or "online"] = row
                print(f"seed {seed} T={t:g} {setting or 'online'}: {row}", flush=True)
    print("| seed | T | teacher outputs | val ppl | vs online | B/token | cache MB | build s |")
    print("|---|---|---|---|---|---|---|---|")
    for (seed, t, name), r in res.items():
        r["vs_online"] = r["val/ppl"] / res[seed, t, "online"]["val/ppl"] - 1
        cells = [f"{seed}", f"{t:g}", "online", f"{r['val/ppl']:.2f}", "", "", "", ""]
        if name != "online":
            codec, k, s = SETTINGS[name]
            cells[2] = f"cached: {name} ({codec}, top-{k} + {s} draws)"
            cells[4] = f"{100 * r['vs_online']:+.2f}%"
            cells[5:] = [
                f"{r['bytes_per_token']:.1f}",
                f"{r['size_bytes'] / 1e6:.2f}",
                f"{r['build_s']:.1f}",
            ]
        print("| " + " | ".join(cells) + " |")
    errors = {}
    if "exact" in args.settings:
        print("\nquantisation against the exact cache (same temperature, shared top ids):")
        for t in args.temperatures:
            seed = args.seeds[0]
            exact = TeacherCache(res[seed, t, "exact"]["cache"])
            for name in args.settings:
                if name != "exact":
                    e = codec_error(TeacherCache(res[seed, t, name]["cache"]), exact)
                    errors[f"{name}.T{t:g}"] = e
                    print(f"  {name} T={t:g}: " + ", ".join(f"{k} {v:.3g}" for k, v in e.items()))
    if args.json:
        out = {f"{seed}.T{t:g}.{name}": r for (seed, t, name), r in res.items()}
        out["codec_error"] = errors
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Every metric name distillab writes, and whether lower is better: declared here, once.

The sweep report ranks jobs, labels axes and draws Pareto fronts from this table; the
evaluation metrics take their names from it. A name that is not here is an error naming it,
never a guess from its spelling: a guessed direction would silently crown the wrong
configuration, and the error tells whoever adds a metric to declare it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from distillab.errors import DistillabError


@dataclass(frozen=True)
class Metric:
    lower_is_better: bool | None  # None: a record, not a figure of merit (a step count)
    what: str  # what it measures, for axis labels


# written as val/<name> and test/<name>
STAGED = {
    "loss": Metric(True, "loss"),
    "ppl": Metric(True, "perplexity"),
    "token_acc": Metric(False, "token accuracy, 0-1"),
    "bleu": Metric(False, "corpus BLEU-4, 0-1"),
    "rougeL": Metric(False, "ROUGE-L F1, 0-1"),
    "distinct1": Metric(False, "distinct-1, 0-1"),
    "distinct2": Metric(False, "distinct-2, 0-1"),
    "topic_acc": Metric(False, "topic accuracy, 0-1"),
    "topic_f1": Metric(False, "topic macro F1, 0-1"),
    "rating_mae": Metric(True, "rating mean absolute error"),
    "teacher_agreement": Metric(False, "top-1 agreement with the teacher, 0-1"),
    "attention_js": Metric(True, "attention JS divergence from the teacher, bits"),
    "ppl_gain": Metric(False, "scratch - distilled perplexity"),
}
STAGES = ("val", "test")
# the order and names EvalMetrics.compute reports per stage (modules/metrics.py)
EVAL = ("ppl", "token_acc", "bleu", "rougeL", "distinct1", "distinct2")
EVAL += ("topic_acc", "topic_f1", "rating_mae")

RUN = {  # metrics.json beside the staged metrics, and the training log
    "model/params": Metric(True, "parameters"),
    "trainer/global_step": Metric(None, "optimizer steps"),
    "time/train_s": Metric(True, "training wall time, s"),
    "throughput/train_tokens_per_s": Metric(False, "training tokens per second"),
    "train/loss": Metric(True, "training loss"),
    "train/on_policy": Metric(None, "share of on-policy batches"),
}

COMPRESSION = "compression/"  # compression.json's scalars, as report figures
COMPRESSION_FIGURES = {
    **{
        k: Metric(True, "parameters")
        for k in (
            "params_before",
            "params_total",
            "params_nonzero",
            "params_non_embedding_before",
            "params_non_embedding",
        )
    },
    "sparsity": Metric(False, "sparsity, fraction of pruned weights that are zero"),
    "size_bytes_fp32": Metric(True, "size on disk, bytes"),
    "size_bytes_fp32_gzip": Metric(True, "the fp32 model's size gzip-ed, bytes"),
    "size_bytes_compressed": Metric(True, "compressed size on disk, bytes"),
    **{
        f"latency_ms_{k}": Metric(True, "latency, ms")
        for k in ("fp32", "eager_int8", "onnx_fp32", "onnx_int8", "compressed")
    },
    "export_agreement_fp32": Metric(False, "ONNX vs eager decode agreement, 0-1"),
    "export_agreement_int8": Metric(False, "ONNX vs eager decode agreement, 0-1"),
}
# compression.json's nested objects: `<key>/<metric>` has the direction of <metric>
# (metrics_before/after: quality before/after compression; retained: after / before)
NESTED = ("metrics_before/", "metrics_after/", "retained/")
# per-layer sparsity: `sparsity_by_layer/<tensor>`
PER_LAYER = {"sparsity_by_layer/": COMPRESSION_FIGURES["sparsity"]}
# comparison.json (quickstart): `<model>/<metric>`
MODELS = ("teacher", "student_scratch", "student_distilled", "baseline_chance")
MODELS += ("baseline_majority",)
# the training log's per-term values and weights: `train/<term>`, `weight/<term>`
TERMS = {"train/": Metric(True, "a loss term"), "weight/": Metric(None, "a loss term's weight")}

METRICS: dict[str, Metric] = {
    **{f"{s}/{k}": m for s in STAGES for k, m in STAGED.items()},
    **RUN,
    **{COMPRESSION + k: m for k, m in COMPRESSION_FIGURES.items()},
}


def find(name: str) -> Metric | None:
    """The declared metric `name` is (through a model's or a compression prefix), or None."""
    if name in METRICS:
        return METRICS[name]
    model, sep, rest = name.partition("/")
    if sep and model in MODELS:
        return find(rest)
    if sep and rest and f"{model}/" in TERMS:
        return TERMS[f"{model}/"]
    if name.startswith(COMPRESSION):
        inner = name[len(COMPRESSION) :]
        for prefix in NESTED:
            if inner.startswith(prefix):
                return find(inner[len(prefix) :])
        for prefix, metric in PER_LAYER.items():
            if inner.startswith(prefix):
                return metric
    return None


def metric(name: str) -> Metric:
    """The declared metric `name`; a DistillabError naming it (and the closest names) if not."""
    found = find(name)
    if found is None:
        close = difflib.get_close_matches(name, list(METRICS), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise DistillabError(
            f"metric {name!r}: unknown, so whether lower is better is not known (declare it in "
            f"distillab/utils/metric_names.py){hint}"
        )
    return found


def lower_is_better(name: str) -> bool:
    """Whether lower `name` is better; a DistillabError for an unknown name or a record (a step
    count) that nothing can be ranked by."""
    lower = metric(name).lower_is_better
    if lower is None:
        raise DistillabError(f"metric {name!r} ({metric(name).what}) is not a figure of merit")
    return lower


def staged(stage: str, name: str) -> str:
    """`<stage>/<name>`, a declared metric (EvalMetrics names its outputs through this)."""
    full = f"{stage}/{name}"
    metric(full)
    return full

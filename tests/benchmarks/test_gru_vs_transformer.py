"""benchmarks/gru_vs_transformer.py at its --quick size: one registry teacher, a GRU and a
transformer student of about the same size distilled from it, and the table's two rows."""

import importlib.util
import json
import math
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def load_bench():
    path = ROOT / "benchmarks" / "gru_vs_transformer.py"
    spec = importlib.util.spec_from_file_location("gru_vs_transformer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_quick_table_has_both_students_with_finite_numbers(tmp_path, capsys):
    bench = load_bench()
    out = tmp_path / "gvt.json"
    r = bench.main(["--quick", "--output-root", str(tmp_path), "--json", str(out)])
    assert json.loads(out.read_text()) == r
    gru, tf = r["model/params.gru"], r["model/params.transformer"]
    assert abs(gru - tf) <= 0.1 * tf  # sized to about the same count
    assert (gru, tf) == (r["params.gru_model"], r["params.transformer_model"])  # as trained
    assert r["teacher.params"] > tf
    # one teacher for both: trained once into the registry, both runs distilled from it
    assert len(list(tmp_path.glob("teachers/*/registry.json"))) == 1
    runs = sorted((tmp_path / "bench_gru_vs_transformer").glob("*/config.yaml"))
    names = [p.parent.name.split("_")[0] for p in runs]
    assert sorted(names) == ["gru", "transformer"]
    saved = {n: yaml.safe_load(p.read_text()) for n, p in zip(names, runs, strict=True)}
    assert saved["gru"]["model"]["_target_"] == "distillab.models.Seq2Seq"
    assert saved["transformer"]["model"]["_target_"].endswith("HFSeq2Seq")
    assert saved["gru"]["teacher"] == saved["transformer"]["teacher"]
    assert saved["gru"]["data"] == saved["transformer"]["data"]
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("| ")]
    header, rows = lines[0], lines[1:]
    assert header.startswith("| student | val ppl | test ppl | parameters | eager ms/token")
    assert [row.split(" | ")[0] for row in rows] == ["| gru", "| transformer"]
    for name, row in zip(("gru", "transformer"), rows, strict=True):
        numbers = [float(c.replace(",", "")) for c in row.strip("| ").split(" | ")[1:]]
        assert len(numbers) == 6 and all(math.isfinite(x) and x > 0 for x in numbers)
        assert r[f"trainer/global_step.{name}"] == 6  # the same budget
        assert 1 < r[f"val/ppl.{name}"] < 1e6

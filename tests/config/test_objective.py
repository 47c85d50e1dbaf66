"""The objective's ranges, written once in its schema (`distillab.config.distill`): the loss
code takes checked values. Each case as `validate` reports it, and on the schema itself."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from distillab.config.distill import Objective
from distillab.config.messages import message

GOOD = {"alpha": 0.5, "temperature": 1.0}


@pytest.mark.parametrize(
    "change, line",
    [
        ({"alpha": 1.5}, "distill.objective.alpha=1.5 is out of range; allowed: [0.0, 1.0]"),
        (
            {"temperature": 0.0},
            "distill.objective.temperature=0.0 is out of range; allowed: (0.0, 100.0]",
        ),
        ({"temperature": 101}, "distill.objective.temperature=101 is out of range"),
        ({"temperature": float("nan")}, "distill.objective.temperature=nan is out of range"),
        ({"temperature": float("inf")}, "distill.objective.temperature=inf is out of range"),
        ({"temperature_end": -1.0}, "distill.objective.temperature_end=-1.0 is out of range"),
        ({"head_temperature": 0.0}, "distill.objective.head_temperature=0.0 is out of range"),
        ({"alpha_end": 2}, "distill.objective.alpha_end=2 is out of range"),
        ({"jsd_beta": 1.5}, "distill.objective.jsd_beta=1.5 is out of range"),
        ({"divergence": "kl"}, "distill.objective.divergence='kl' is not allowed; choose one of"),
        (
            {"terms": {"hidden": {"_target_": "distillab.losses.terms.AttentionKL", "weight": -1}}},
            "distill.objective.terms.hidden.weight=-1 is out of range; allowed: [0.0, inf]",
        ),
        (
            {"terms": {"hidden": {"_target_": "distillab.losses.terms.AttentionKL"}}},
            "distill.objective.terms.hidden.weight is missing (a loss term needs it)",
        ),
        ({"temperature": "hot"}, "distill.objective.temperature='hot' must be a number"),
    ],
)
def test_objective_ranges_are_one_line(change, line):
    with pytest.raises(ValidationError) as err:
        Objective.model_validate({**GOOD, **change})
    assert line in message(err.value, Objective, ("distill", "objective"))


def test_good_objective_keeps_its_values():
    obj = Objective.model_validate({**GOOD, "temperature": 100, "head_temperature": None})
    assert (obj.temperature, obj.divergence, obj.head_temperature) == (100, "forward_kl", None)

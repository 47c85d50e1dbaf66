"""NaN guard, RNG state in checkpoints, DistinctN's tensor state."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from distillab.errors import DistillabError
from distillab.modules.metrics import DistinctN
from distillab.modules.reliability import NonFiniteLossError, RngState, check_finite


def test_non_finite_loss_names_the_step_and_term():
    values = {"ce": torch.tensor(2.0), "kd": torch.tensor(float("nan"))}
    with pytest.raises(NonFiniteLossError, match=r"step 7 .*kd=nan") as e:
        check_finite(torch.tensor(float("nan")), values, step=7)
    assert isinstance(e.value, DistillabError) and "ce=" not in str(e.value)
    check_finite(torch.tensor(1.0), {"ce": torch.tensor(1.0)}, step=1)  # finite: no error


def test_rng_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    path = tmp_path / "rng.pt"
    torch.save(RngState().state_dict(), path)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    RngState().load_state_dict(torch.load(path, weights_only=True))
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    assert got[2] == expected[2]


def test_distinct_n_counts_unique_ngrams_from_hashes():
    m = DistinctN(2)
    m.update(["a b c", "a b d"])
    m.update([])
    assert float(m.compute()) == pytest.approx(3 / 4)

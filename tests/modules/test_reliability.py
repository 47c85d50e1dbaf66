"""NaN guard, RNG state in checkpoints, DistinctN's tensor state."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from distillab.errors import DistillabError
from distillab.modules.finite import FiniteGuard, NonFiniteLossError, check_finite
from distillab.modules.metrics import DistinctN
from distillab.modules.reliability import RngState


def test_non_finite_loss_names_the_step_and_term():
    values = {"ce": torch.tensor(2.0), "kd": torch.tensor(float("nan"))}
    with pytest.raises(NonFiniteLossError, match=r"step 7 .*kd=nan") as e:
        check_finite(torch.tensor(float("nan")), values, step=7)
    assert isinstance(e.value, DistillabError) and "ce=" not in str(e.value)
    check_finite(torch.tensor(1.0), {"ce": torch.tensor(1.0)}, step=1)  # finite: no error


def test_finite_guard_reads_the_device_flag_every_n_steps():
    guard = FiniteGuard(every=4)
    nan, one = torch.tensor(float("nan")), torch.tensor(1.0)
    guard(one, {}, step=0)
    guard(nan, {}, step=1)  # not read yet: no host sync on this step
    guard(one, {}, step=2)
    with pytest.raises(NonFiniteLossError, match="between steps 0 and 3"):
        guard(one, {}, step=3)
    guard(one, {}, step=4)
    guard.flush(step=5)  # finite since the last read: no error
    with pytest.raises(NonFiniteLossError, match=r"step 6 .*ce=nan"):
        FiniteGuard(every=1)(nan, {"ce": nan}, step=6)
    with pytest.raises(ValueError, match="finite_check_every=0"):
        FiniteGuard(every=0)


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


def test_a_stop_asked_for_before_the_trainer_runs_waits_for_its_sigterm_handler(tmp_path):
    """GracefulStop hands SIGINT and the preemption notice to the Trainer's graceful stop (its
    SIGTERM handler) only once that handler is in place; one that comes earlier waits for it."""
    import signal

    from distillab.modules.reliability import GracefulStop, preempt_signal

    got: list[int] = []
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, preempt_signal())}
    signal.signal(signal.SIGTERM, lambda s, f: got.append(s))  # stands for Lightning's
    stop = GracefulStop(tmp_path / "last.ckpt")
    try:
        stop.setup(None, None, "fit")
        assert signal.getsignal(preempt_signal()) == stop._on_stop
        signal.raise_signal(preempt_signal())  # during setup: the Trainer's handler is not there
        assert got == [] and stop.signal == preempt_signal().name
        stop.on_train_start(type("T", (), {"ckpt_path": None})(), None)  # its run begins
        assert got == [signal.SIGTERM]
        signal.raise_signal(signal.SIGINT)  # armed: handed over at once
        assert got == [signal.SIGTERM] * 2 and stop.signal == "SIGINT"
        with pytest.raises(KeyboardInterrupt):  # a second Ctrl+C stops now
            signal.raise_signal(signal.SIGINT)
        stop.teardown(None, None, "fit")
        assert signal.getsignal(preempt_signal()) == before[preempt_signal()]
        assert signal.getsignal(signal.SIGINT) == before[signal.SIGINT]
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)

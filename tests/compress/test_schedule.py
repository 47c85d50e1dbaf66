import pytest

from distillab.compress import cubic_sparsity


def test_cubic_schedule_values():
    s = lambda t: cubic_sparsity(t, 0.8, start_step=10, end_step=110)  # noqa: E731
    assert s(0) == 0.0 and s(10) == 0.0
    assert s(60) == pytest.approx(0.8 * (1 - 0.5**3))  # 0.7: most of it in the first half
    assert s(35) == pytest.approx(0.8 * (1 - 0.75**3))
    assert s(110) == s(500) == 0.8
    values = [s(t) for t in range(10, 111)]
    assert values == sorted(values)  # never decreases
    assert cubic_sparsity(5, 0.5, start_step=5, end_step=5) == 0.5  # a single step


def test_structured_stages_one_step_then_recovery():
    from distillab.compress.schedule import structured_stages

    assert structured_stages(0.5, 7, None) == [(0.5, 7)]
    assert structured_stages(0.5, 0, None) == [(0.5, 0)]


def test_structured_stages_on_a_schedule_end_at_the_target_and_fine_tune_after_each():
    from distillab.compress.schedule import structured_stages

    stages = structured_stages(0.8, 60, (10, 40, 10))  # in fine-tuning steps
    assert stages[0] == (0.0, 10)  # nothing pruned before the schedule starts
    targets = [t for t, _ in stages]
    assert targets == sorted(targets) and targets[-1] == 0.8 and len(stages) == 4
    assert targets[1] == pytest.approx(cubic_sparsity(20, 0.8, 10, 40))
    assert [n for _, n in stages] == [10, 10, 10, 30]  # the last stage until the phase ends
    # training's schedule (finetune_steps=0) is replayed after training over its span
    replay = structured_stages(0.5, 0, (2, 8, 3))
    assert [n for _, n in replay] == [3, 3] and replay[-1][0] == 0.5
    assert structured_stages(0.5, 0, (0, 6, 10)) == [(0.5, 6)]  # the tiny preset: one stage

"""read_log_probs: one op for the columns and dense dot products the losses read."""

import pytest
import torch

from distillab.losses.reads import read_log_probs


def test_reads_equal_gather_and_matmul_in_value_and_gradient():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, 11, generator=g, dtype=torch.float64)
    ids = torch.randint(0, 11, (3, 4, 5), generator=g)
    ids[0, 0, 1] = ids[0, 0, 0]  # a repeated column: its gradients add up
    vectors = torch.softmax(torch.randn(2, 11, generator=g, dtype=torch.float64), -1)
    w_cols = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    w_dots = torch.randn(3, 4, 2, generator=g, dtype=torch.float64)

    def run(fused: bool):
        z = logits.clone().requires_grad_()
        lp = torch.log_softmax(z, -1)
        if fused:
            cols, dots = read_log_probs(lp, ids, vectors)
        else:
            cols, dots = lp.gather(-1, ids), lp @ vectors.T
        ((cols * w_cols).sum() + (dots * w_dots).sum()).backward()
        return cols.detach(), dots.detach(), z.grad

    for got, want in zip(run(True), run(False), strict=True):
        torch.testing.assert_close(got, want)
    assert run(True)[2].abs().sum() > 0


def test_reads_pass_gradcheck():
    g = torch.Generator().manual_seed(1)
    lp = torch.randn(5, 7, generator=g, dtype=torch.float64, requires_grad=True)
    ids = torch.randint(0, 7, (5, 3), generator=g)
    vectors = torch.rand(2, 7, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: read_log_probs(x, ids, vectors), (lp,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_without_vectors_it_is_a_gather(dtype):
    lp = torch.randn(2, 3, 6, dtype=dtype)
    ids = torch.tensor([[[0, 5]] * 3] * 2)
    cols, dots = read_log_probs(lp, ids)
    assert dots is None
    torch.testing.assert_close(cols, lp.gather(-1, ids))

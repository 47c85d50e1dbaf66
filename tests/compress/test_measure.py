import numpy as np
import torch

from distillab.compress import MagnitudePruning, fold, quantize_int8
from distillab.compress.measure import median_ms, param_counts, serialized_bytes
from distillab.compress.step import token_agreement
from distillab.models import Seq2Seq


def test_token_agreement_counts_positions_either_decode_has():
    a = [np.array([5, 6, 3]), np.array([7, 3])]
    b = [np.array([5, 9, 3]), np.array([7, 3, 0, 0])]  # trailing pad is no token
    assert token_agreement(a, b, pad_id=0) == 4 / 5
    assert token_agreement(a, a, pad_id=0) == 1.0
    assert token_agreement([np.array([4])], [np.array([4, 8])], pad_id=0) == 0.5


def test_sizes_and_counts_of_a_pruned_int8_model():
    torch.manual_seed(0)
    model = Seq2Seq(300, 0, emb_dim=16, hidden_size=32).eval()
    pruned = fold(MagnitudePruning().prune(Seq2Seq(300, 0, emb_dim=16, hidden_size=32), 0.8))
    before, after = param_counts(model), param_counts(pruned)
    assert after["total"] == before["total"] and after["nonzero"] < 0.5 * before["nonzero"]
    assert before["non_embedding"] < before["total"]
    raw = serialized_bytes(model)
    assert serialized_bytes(pruned, compressed=True) < 0.6 * raw  # zeros compress
    assert serialized_bytes(quantize_int8(pruned), compressed=True) < 0.4 * raw


def test_median_ms_times_every_input():
    calls = []
    ms = median_ms(lambda s, m: calls.append(s), [(1, None), (2, None), (3, None)], warmup=1)
    assert calls == [1, 1, 2, 3] and ms >= 0

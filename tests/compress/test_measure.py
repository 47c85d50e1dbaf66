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


def test_int8_embeddings_shrink_the_deployed_model_and_keep_its_outputs():
    from distillab.compress.quantize import Int8Embedding

    torch.manual_seed(0)
    model = Seq2Seq(2000, 0, emb_dim=32, hidden_size=32, dropout=0.0).eval()  # embedding-heavy
    int8 = quantize_int8(model)
    assert isinstance(int8.embedding, Int8Embedding)
    table = model.embedding.weight
    assert (int8.embedding.weight - table).abs().max() <= table.abs().max() / 127
    dense = serialized_bytes(model)
    with_float_table = (
        serialized_bytes(model.embedding)
        + serialized_bytes(int8)
        - serialized_bytes(int8.embedding)
    )
    assert serialized_bytes(int8) < 0.5 * with_float_table < 0.5 * dense
    src = torch.randint(4, 2000, (2, 7))
    mask = torch.ones(2, 7, dtype=torch.bool)
    with torch.no_grad():  # the encoder reads the table, the tied output layer all of it
        a = model.encode_source(src, mask)[0]
        b = int8.encode_source(src, mask)[0]
        h = torch.randn(2, 32)
        logits = model.project(h), int8.project(h)
    torch.testing.assert_close(a, b, atol=0.1, rtol=0.1)
    assert (logits[0] - logits[1]).abs().max() < 0.05 * logits[0].abs().max()

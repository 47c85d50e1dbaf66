import pytest
import torch

from distillab.compress import GradualPruning, MagnitudePruning, fold, fold_state_dict
from distillab.compress.measure import param_counts, sparsity
from distillab.compress.pruning import prunable
from distillab.models import Seq2Seq


def tiny(**kw) -> Seq2Seq:
    torch.manual_seed(0)
    return Seq2Seq(300, 0, emb_dim=16, hidden_size=32, **kw).eval()


def measure_sparsity(model) -> tuple[float, dict[str, float]]:
    """Sparsity as compression.json reports it, against the dense model of the same shapes."""
    return sparsity(tiny(), model)


def batch():
    src = torch.randint(4, 300, (2, 7))
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 4:] = False
    return src, mask, torch.randint(4, 300, (2, 5))


def test_prunable_covers_gru_attention_output_and_optional_embeddings():
    names = [q for _, _, q in prunable(tiny(num_topics=3))]
    for name in (
        "encoder.fwd.0.weight_ih_l0",
        "encoder.bwd.0.weight_hh_l0",
        "decoder.gru.weight_hh_l0",
        "decoder.attention.key_proj.weight",
        "out_proj.weight",
        "topic_head.0.weight",
    ):
        assert name in names
    assert "embedding.weight" not in names
    assert "embedding.weight" in [q for _, _, q in prunable(tiny(), embeddings=True)]


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_magnitude_pruning_reaches_sparsity_and_folds(scope):
    model = MagnitudePruning(scope).prune(tiny(), 0.6)
    assert any(n.endswith("_orig") for n, _ in model.named_parameters())  # masks on
    src, mask, tgt = batch()
    masked = model(src, mask, tgt).logits
    fold(model)
    assert not any("_orig" in n or "_mask" in n for n in model.state_dict())
    overall, by_layer = measure_sparsity(model)
    assert overall == pytest.approx(0.6, abs=0.01)
    if scope == "layer":
        assert all(v == pytest.approx(0.6, abs=0.01) for v in by_layer.values())
    else:  # one threshold: tensors differ
        assert max(by_layer.values()) - min(by_layer.values()) > 0.01
    assert torch.allclose(model(src, mask, tgt).logits, masked)  # folding changes nothing
    assert param_counts(model)["nonzero"] < param_counts(tiny())["nonzero"]


def test_repruning_keeps_earlier_zeros_and_parameter_objects():
    model = tiny()
    params = {id(p) for p in model.parameters()}
    pruner = MagnitudePruning()
    pruner.prune(model, 0.3)
    zero_before = {q: (getattr(m, n) == 0).clone() for m, n, q in prunable(model)}
    pruner.prune(model, 0.7)
    fold(model)
    for m, n, q in prunable(model):
        assert bool((getattr(m, n) == 0)[zero_before[q]].all())  # pruned weights stay pruned
    assert {id(p) for p in model.parameters()} == params  # an optimiser's references hold


def test_fold_state_dict():
    model = MagnitudePruning().prune(tiny(), 0.5)
    state = fold_state_dict(model.state_dict())
    assert not any(k.endswith(("_orig", "_mask")) for k in state)
    dense = tiny()
    dense.load_state_dict(state)
    assert measure_sparsity(dense)[0] == pytest.approx(0.5, abs=0.01)


class FakeModule:
    def __init__(self, model):
        self.model = model


def test_gradual_callback_follows_the_schedule():
    module = FakeModule(tiny())
    cb = GradualPruning(MagnitudePruning(), 0.8, start_step=2, end_step=10, frequency=2)

    class T:
        global_step = 0

    cb.on_fit_start(T, module)
    assert measure_sparsity(module.model)[0] == 0.0
    seen = {}
    for step in range(12):
        T.global_step = step
        cb.on_train_batch_start(T, module, None, step)
        seen[step] = measure_sparsity(module.model)[0]
    assert seen[3] == seen[2] < seen[4] < seen[6] < seen[8] < seen[10]  # every 2 steps
    assert seen[11] == pytest.approx(0.8, abs=0.01)
    ckpt = {"state_dict": module.model.state_dict()}
    cb.on_save_checkpoint(T, module, ckpt)
    assert not any(k.endswith("_orig") for k in ckpt["state_dict"])
    cb.on_train_end(T, module)
    assert not any("_orig" in n for n in module.model.state_dict())

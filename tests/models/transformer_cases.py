"""What the transformer model tests share (the shared tests run on the `family` fixture of
the test module that imports them): tiny models with spread-out weights (random
init at these sizes decodes one token everywhere, which would prove nothing) and a reference
decoder that reruns the model on the whole prefix at every step (no key/value cache)."""

from __future__ import annotations

from typing import NamedTuple

import pytest
import torch
from torch import Tensor, nn

from distillab.decoding import Beam, Greedy, Sample
from distillab.errors import ConfigError
from distillab.models.hf_causal import HFCausal
from distillab.models.hf_seq2seq import HFSeq2Seq

V, PAD, BOS, EOS = 40, 0, 2, 3
SIZES = {"hidden_size": 16, "attention_heads": 2, "ffn_size": 32, "dropout": 0.0}


def tiny(cls: type, depth: int = 2, seed: int = 0, **kw) -> nn.Module:
    torch.manual_seed(seed)
    layers = {"layers": depth} if cls is HFCausal else {"enc_layers": depth, "dec_layers": depth}
    model = cls(vocab_size=V, pad_id=PAD, **SIZES, **layers, **kw)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.6)
    return model.eval()


def inputs(seed: int = 1) -> tuple[Tensor, Tensor, Tensor]:
    """3 sources (right-padded, one short row) and BOS-started targets."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, V, (3, 7), generator=g)
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[1, 4:] = False
    src[~mask] = PAD
    tgt = torch.randint(4, V, (3, 5), generator=g)
    tgt[:, 0] = BOS
    return src, mask, tgt


class Prefix(NamedTuple):
    src: Tensor
    mask: Tensor
    prefix: Tensor


class NoCache:
    """The decoding protocol without a cache: every step is a teacher-forced pass over the
    whole prefix (the reference the cached decoding must equal)."""

    def __init__(self, model: nn.Module) -> None:
        self.model, self.vocab_size, self.pad_id = model, model.vocab_size, model.pad_id

    def encode(self, src: Tensor, src_mask: Tensor) -> Prefix:
        return Prefix(src, src_mask, src.new_empty(src.size(0), 0))

    def step(self, prev: Tensor, state: Prefix) -> tuple[Tensor, Prefix]:
        prefix = torch.cat([state.prefix, prev.unsqueeze(1)], 1)
        logits = self.model(state.src, state.mask, prefix).logits[:, -1].float()
        return logits, Prefix(state.src, state.mask, prefix)

    def reorder(self, state: Prefix, index: Tensor) -> Prefix:
        return Prefix(*(t.index_select(0, index) for t in state))


# ---- the tests both families run ------------------------------------------------------------
def test_outputs_have_every_field_and_attention_rows_on_real_source(family):
    model = tiny(family, num_topics=3, rating_head=True)
    src, mask, tgt = inputs()
    out = model(src, mask, tgt)
    assert out.logits.shape == (3, 5, V) and out.dec_states.shape == (3, 5, 16)
    assert out.enc_states.shape == (3, 7, 16) and (out.enc_states[1, 4:] == 0).all()
    assert len(out.layer_states) == 2 and out.layer_states[-1] is out.enc_states
    assert len(out.layer_attn) == 2 and out.attn is out.layer_attn[-1]
    for a in out.layer_attn:
        assert a.shape == (3, 5, 7)
        torch.testing.assert_close(a.sum(-1), torch.ones(3, 5))
        assert (a[1, :, 4:] == 0).all()  # nothing on source padding
    assert out.topic_logits.shape == (3, 3) and out.rating.shape == (3,)
    assert ((out.rating > 0) & (out.rating < 1)).all()
    topic, rating = model.heads(src, mask)  # the heads alone: the same pooled states
    torch.testing.assert_close(topic, out.topic_logits)
    torch.testing.assert_close(rating, out.rating)


def test_a_row_scores_the_same_whatever_the_batchs_padding(family):
    model = tiny(family)
    src, mask, tgt = inputs()
    batched = model(src, mask, tgt).logits[1]
    alone = model(src[1:2, :4], mask[1:2, :4], tgt[1:2]).logits[0]
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)


def test_cached_steps_equal_teacher_forcing_and_the_no_cache_decode(family):
    model = tiny(family)
    src, mask, tgt = inputs()
    forced = model(src, mask, tgt).logits
    with torch.no_grad():
        state = model.encode(src, mask)
        reference = NoCache(model)
        ref_state = reference.encode(src, mask)
        for j in range(tgt.size(1)):
            logits, state = model.step(tgt[:, j], state)
            ref, ref_state = reference.step(tgt[:, j], ref_state)
            assert logits.dtype == torch.float32
            torch.testing.assert_close(logits, forced[:, j], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(logits, ref, atol=1e-5, rtol=1e-5)
    kw = dict(bos_id=BOS, eos_id=EOS, max_len=8)
    greedy = Greedy()(model, src, mask, **kw)
    assert greedy.shape[1] == 8 and len(set(greedy.flatten().tolist())) > 2  # not one token
    torch.testing.assert_close(greedy, Greedy()(NoCache(model), src, mask, **kw))


def test_beam_search_reorders_the_cache(family):
    model = tiny(family)
    src, mask, _ = inputs()
    kw = dict(bos_id=BOS, eos_id=EOS, max_len=6)
    for k in (2, 4):
        beam = Beam(beam_size=k)(model, src, mask, **kw)
        torch.testing.assert_close(beam, Beam(beam_size=k)(NoCache(model), src, mask, **kw))
    # mid-decode, a reordered state continues like the reordered rows would have
    index = torch.tensor([2, 0, 0, 1])
    with torch.no_grad():
        state = model.encode(src, mask)
        for tok in (BOS, 7):
            _, state = model.step(torch.full((3,), tok), state)
        moved, _ = model.step(torch.full((4,), 9), model.reorder(state, index))
        state = model.encode(src[index], mask[index])
        for tok in (BOS, 7, 9):
            direct, state = model.step(torch.full((4,), tok), state)
    torch.testing.assert_close(moved, direct, atol=1e-5, rtol=1e-5)
    sample = Sample(top_p=0.9, seed=3)
    torch.testing.assert_close(
        sample(model, src, mask, **kw), sample(NoCache(model), src, mask, **kw)
    )


def test_student_copies_every_other_teacher_layer_and_embeddings(family):
    teacher, student = tiny(family, depth=4, seed=0), tiny(family, depth=2, seed=1)
    copied = student.init_from(teacher)
    t, s = dict(teacher.named_parameters()), dict(student.named_parameters())
    for prefix in student.stacks():
        for i, j in enumerate([0, 2]):  # default map: evenly strided, every other layer
            mine = [n for n in s if n.startswith(f"{prefix}{i}.")]
            assert mine and all(n in copied for n in mine)
            for n in mine:
                torch.testing.assert_close(s[n], t[n.replace(f"{prefix}{i}.", f"{prefix}{j}.")])
    emb = student.net.get_input_embeddings().weight
    torch.testing.assert_close(emb, teacher.net.get_input_embeddings().weight)
    student.init_from(teacher, [3, 1])  # a configured map
    prefix = next(iter(student.stacks()))
    n = next(n for n in s if n.startswith(f"{prefix}0."))
    torch.testing.assert_close(s[n], t[n.replace(f"{prefix}0.", f"{prefix}3.")])
    with pytest.raises(ConfigError, match="has 3 entries but the student"):
        student.init_from(teacher, [0, 1, 2])
    with pytest.raises(ConfigError, match="out of range for the teacher"):
        student.init_from(teacher, [0, 4])
    other = HFCausal if family is HFSeq2Seq else HFSeq2Seq
    with pytest.raises(ConfigError, match="from a teacher of its own family"):
        student.init_from(tiny(other))

"""model=hf_seq2seq: the tests both transformer families share (`transformer_cases`), on
BART, and its own: sizes, positions, loading a saved model."""

import pytest
import torch

from distillab.errors import ConfigError
from distillab.models.hf_causal import HFCausal
from distillab.models.hf_seq2seq import HFSeq2Seq
from tests.hf_tiny import save_tiny
from tests.models.transformer_cases import (  # noqa: F401 - the shared tests, collected here
    PAD,
    V,
    test_a_row_scores_the_same_whatever_the_batchs_padding,
    test_beam_search_reorders_the_cache,
    test_cached_steps_equal_teacher_forcing_and_the_no_cache_decode,
    test_outputs_have_every_field_and_attention_rows_on_real_source,
    test_student_copies_every_other_teacher_layer_and_embeddings,
    tiny,
)


@pytest.fixture
def family():
    return HFSeq2Seq


def test_width_must_divide_among_heads():
    with pytest.raises(ValueError, match="multiple of model.attention_heads=3"):
        HFSeq2Seq(vocab_size=V, pad_id=PAD, hidden_size=16, attention_heads=3)


def test_too_long_inputs_name_max_positions():
    model = tiny(HFSeq2Seq, max_positions=8)
    src = torch.full((1, 9), 5)
    with pytest.raises(ValueError, match="max_positions=8"):
        model(src, src > 0, src[:, :3])


def test_loads_a_saved_bart_and_resizes_to_the_runs_vocabulary(tmp_path):
    from transformers import AutoModelForSeq2SeqLM

    path = save_tiny("bart", tmp_path / "bart")
    saved = AutoModelForSeq2SeqLM.from_pretrained(path).eval()
    n = saved.get_input_embeddings().num_embeddings
    model = HFSeq2Seq(vocab_size=n + 2, pad_id=1, path=str(path)).eval()
    assert model.net.get_input_embeddings().num_embeddings == n + 2
    src = torch.tensor([[5, 6, 7, 8]])
    tgt = torch.tensor([[2, 9, 10]])
    out = model(src, src > 0, tgt)
    ref = saved(input_ids=src, decoder_input_ids=tgt).logits
    torch.testing.assert_close(out.logits[..., :n], ref, atol=1e-5, rtol=1e-5)
    with pytest.raises(ConfigError, match="a seq2seq model; this model family needs a causal"):
        HFCausal.check_config({"path": str(path)})

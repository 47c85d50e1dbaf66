"""model=hf_causal: the tests both transformer families share (`transformer_cases`), on
GPT-2, and its own: context + response in one sequence, loading a saved model."""

import pytest
import torch

from distillab.errors import ConfigError
from distillab.models.hf_causal import HFCausal
from distillab.models.hf_seq2seq import HFSeq2Seq
from tests.hf_tiny import save_tiny
from tests.models.transformer_cases import (  # noqa: F401 - the shared tests, collected here
    inputs,
    test_a_row_scores_the_same_whatever_the_batchs_padding,
    test_beam_search_reorders_the_cache,
    test_cached_steps_equal_teacher_forcing_and_the_no_cache_decode,
    test_outputs_have_every_field_and_attention_rows_on_real_source,
    test_student_copies_every_other_teacher_layer_and_embeddings,
    tiny,
)


@pytest.fixture
def family():
    return HFCausal


def test_context_and_response_are_one_sequence():
    """The response logits equal a plain GPT-2 pass over the unpadded context + response."""
    model = tiny(HFCausal)
    src, mask, tgt = inputs()
    out = model(src, mask, tgt)
    for row in range(3):
        ids = torch.cat([src[row][mask[row]], tgt[row]]).unsqueeze(0)
        ref = model.net(input_ids=ids).logits[0, -tgt.size(1) :]
        torch.testing.assert_close(out.logits[row], ref, atol=1e-5, rtol=1e-5)


def test_loads_a_saved_gpt2_and_resizes_to_the_runs_vocabulary(tmp_path):
    from transformers import AutoModelForCausalLM

    path = save_tiny("gpt2", tmp_path / "gpt2")
    saved = AutoModelForCausalLM.from_pretrained(path).eval()
    n = saved.get_input_embeddings().num_embeddings
    model = HFCausal(vocab_size=n + 3, pad_id=n, path=str(path)).eval()
    src, tgt = torch.tensor([[5, 6, 7]]), torch.tensor([[0, 9]])
    out = model(src, src > 0, tgt)
    ref = saved(input_ids=torch.cat([src, tgt], 1)).logits[:, 3:]
    torch.testing.assert_close(out.logits[..., :n], ref, atol=1e-5, rtol=1e-5)
    with pytest.raises(ConfigError, match="a causal model; this model family needs a seq2seq"):
        HFSeq2Seq.check_config({"path": str(path)})

"""The typed batch: what collate builds, how a batch with other targets is derived, and that
Lightning moves every tensor of it (the conversation bag included) to the device."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_lightning.utilities import move_data_to_device

from distillab.data.batch import Batch, ConversationBag, TrainingBatch
from distillab.data.batching import collate
from distillab.models import Seq2Seq
from distillab.modules.seq2seq import Seq2SeqModule

PAD, BOS, EOS = 0, 1, 2


def _items(shared_head: bool = False) -> list[dict]:
    out = []
    for i, (src, tgt, conv) in enumerate(
        [([5, 6, 7], [8, 9], [5, 6, 7, 8, 9, 10]), ([11], [12], [11, 12])]
    ):
        s = np.array(src)
        out.append(
            {"index": 10 + i, "src": s, "head_src": s if shared_head else np.array([3, *src]),
             "conv": np.array(conv), "tgt": np.array(tgt), "topic": i, "rating": [0.5, np.nan][i]}
        )  # fmt: skip
    return out


def _batch(**kw) -> Batch:
    return collate(_items(**kw), PAD, BOS, EOS, conversation_bag=True)


def test_collate_pads_into_named_tensors():
    b = _batch()
    assert isinstance(b, Batch) and b.size == 2 and b.index.tolist() == [10, 11]
    assert b.src.tolist() == [[5, 6, 7], [11, 0, 0]] and b.src_mask.sum().item() == 4
    assert b.tgt_in.tolist() == [[BOS, 8, 9], [BOS, 12, PAD]]
    assert b.tgt_out.tolist() == [[8, 9, EOS], [12, EOS, PAD]]
    assert b.n_tokens == 5 == int(b.tgt_mask.sum())
    assert b.head_src.tolist() == [[3, 5, 6, 7], [3, 11, 0, 0]]
    assert b.head_input == (b.head_src, b.head_src_mask)
    assert b.rating.tolist() == [0.5, 0.0] and b.rating_mask.tolist() == [True, False]
    tokens, offsets = b.conversation
    assert tokens.tolist() == [5, 6, 7, 8, 9, 10, 11, 12] and offsets.tolist() == [0, 6]


def test_heads_reading_the_source_and_no_bag_unless_asked():
    b = collate(_items(shared_head=True), PAD, BOS, EOS)
    assert b.head_src is None and b.head_input == (b.src, b.src_mask)
    assert b.conversation is None


def test_with_targets_derives_a_new_batch_and_nothing_can_be_added():
    b = _batch()
    tgt_out = torch.tensor([[4, EOS, PAD, PAD], [4, 4, 4, EOS]])
    tgt_in = torch.tensor([[BOS, 4, PAD, PAD], [BOS, 4, 4, 4]])
    new = b.with_targets(tgt_in, tgt_out, tgt_out != PAD)
    assert new is not b and new.n_tokens == 6 and new.tgt_out is tgt_out
    assert new.src is b.src and new.conversation is b.conversation and new.topic is b.topic
    assert b.n_tokens == 5 and b.tgt_out.shape == (2, 3)  # the original is unchanged
    with pytest.raises(AttributeError):
        b.on_policy = True  # slots: a batch carries its fields and nothing else
    assert TrainingBatch(b).gold and not TrainingBatch(new, gold=False).gold


def _devices() -> list[str]:
    return ["meta"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", _devices())
def test_lightning_moves_every_tensor_of_a_batch(device):
    b = _batch()
    module = Seq2SeqModule(
        {"_target_": "distillab.models.Seq2Seq", "emb_dim": 8, "hidden_size": 8},
        vocab_size=20, pad_id=PAD, bos_id=BOS, eos_id=EOS,
    )  # fmt: skip
    for moved in (
        move_data_to_device(b, torch.device(device)),
        module.transfer_batch_to_device(b, torch.device(device), 0),
    ):
        assert isinstance(moved, Batch) and moved.n_tokens == b.n_tokens
        tensors = [
            moved.index, moved.src, moved.src_mask, moved.head_src, moved.head_src_mask,
            moved.tgt_in, moved.tgt_out, moved.tgt_mask, moved.topic, moved.rating,
            moved.rating_mask, *moved.conversation,
        ]  # fmt: skip
        assert all(t.device.type == device for t in tensors)
        assert isinstance(moved.conversation, ConversationBag)
        assert b.src.device.type == "cpu"  # the loader's batch is left as it was


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_a_moved_batch_runs_the_model_on_the_gpu():
    model = Seq2Seq(20, pad_id=PAD, emb_dim=8, hidden_size=8, num_topics=2).cuda()
    b = move_data_to_device(_batch(shared_head=True), torch.device("cuda"))
    out = model(b.src, b.src_mask, b.tgt_in, b.head_src, b.head_src_mask, b.conversation)
    assert out.logits.is_cuda and out.topic_logits.shape == (2, 2)

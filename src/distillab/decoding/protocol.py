"""The contract between decoding strategies and the models they decode.

A strategy (:mod:`distillab.decoding`: ``Greedy``, ``Beam``, ``Sample``) drives any model that
implements :class:`Decodable`: two attributes and three methods, nothing else.

``vocab_size: int``, ``pad_id: int``
    The width of the logits, and the id that fills positions after EOS (so it is never
    generated; neither is BOS).

``encode(src [B, Ts] long, src_mask [B, Ts] bool) -> state``
    The decoder's initial state for a batch: one row per source. ``state`` is opaque to the
    strategies (for :class:`~distillab.models.Seq2Seq` it holds the precomputed attention
    memory and the decoder's initial hidden state); they only hand it back to ``step`` and
    ``reorder``. ``src_mask`` is True on real tokens, a prefix of each row.

``step(prev_tokens [N] long, state) -> (logits [N, V] float32, new_state)``
    One decoder step: feed each row's previous token (BOS first), get the next token's
    unnormalised scores. ``N`` is the number of rows of ``state``.

``reorder(state, index [N'] long) -> state``
    Row ``i`` of the result is row ``index[i]`` of ``state``: selects, repeats or permutes rows.
    Beam search expands ``B`` sources to ``B * K`` rows with
    ``arange(B).repeat_interleave(K)`` and reorders after every step.

Strategies call these under ``torch.inference_mode()`` and expect ``model.eval()`` for
deterministic output; a model should keep per-batch work (encoder, attention keys) in
``encode`` so that ``step`` stays cheap: at batch 1, per-step overhead is the decoding time.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class Decodable(Protocol):
    """A model the strategies of :mod:`distillab.decoding` can decode (see the module doc)."""

    vocab_size: int
    pad_id: int

    def encode(self, src: Tensor, src_mask: Tensor) -> Any: ...

    def step(self, prev_tokens: Tensor, state: Any) -> tuple[Tensor, Any]: ...

    def reorder(self, state: Any, index: Tensor) -> Any: ...


class Strategy(Protocol):
    """A decoding strategy: ``strategy(model, src, src_mask, bos_id=, eos_id=, max_len=)``.

    Returns a LongTensor ``[B, <=max_len]`` of generated tokens without BOS; EOS is included
    and the positions after it are ``model.pad_id``. The width is the longest row's length.
    """

    def __call__(
        self,
        model: Decodable,
        src: Tensor,
        src_mask: Tensor,
        *,
        bos_id: int,
        eos_id: int,
        max_len: int,
    ) -> Tensor: ...

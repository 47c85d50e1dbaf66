"""Generative dialogue models: padding-invariant GRU encoder-decoder with attention."""

from distillab.models.attention import Attention
from distillab.models.decoder import GRUDecoder
from distillab.models.encoder import GRUEncoder
from distillab.models.seq2seq import ConversationBag, DecoderState, Seq2Seq, Seq2SeqOutput

__all__ = [
    "Attention",
    "ConversationBag",
    "DecoderState",
    "GRUDecoder",
    "GRUEncoder",
    "Seq2Seq",
    "Seq2SeqOutput",
]

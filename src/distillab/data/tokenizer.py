"""Train a subword tokenizer on the training split and wrap it for `transformers`."""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from distillab.errors import check_choice

PAD, UNK, BOS, EOS = "[PAD]", "[UNK]", "[BOS]", "[EOS]"
SELF, OTHER = "<self>", "<other>"  # speaker markers, relative to the speaker of the target turn
SPECIAL_TOKENS = [PAD, UNK, BOS, EOS, SELF, OTHER]
KINDS = ("bpe", "wordpiece")


def train_tokenizer(
    texts: Iterable[str], kind: str, vocab_size: int, min_frequency: int = 2, lowercase: bool = True
) -> PreTrainedTokenizerFast:
    """Byte-level BPE (lossless decoding) or WordPiece, trained with the `tokenizers` library."""
    check_choice("data.tokenizer", kind, KINDS)
    norm = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
    if kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=SPECIAL_TOKENS,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
    else:
        tok = Tokenizer(models.WordPiece(unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=SPECIAL_TOKENS,
            show_progress=False,
        )
    tok.normalizer = normalizers.Sequence(norm)
    tok.train_from_iterator(texts, trainer)
    return wrap(tok)


def wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        unk_token=UNK,
        bos_token=BOS,
        eos_token=EOS,
        extra_special_tokens=[SELF, OTHER],
    )


def load_tokenizer(path: str) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast.from_pretrained(path)

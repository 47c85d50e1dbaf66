"""The pipeline's tokenizer: a subword tokenizer trained on the training split and wrapped for
`transformers`, or a pretrained one (a Hugging Face teacher's) prepared for dialogue.

A pretrained tokenizer must keep the teacher's ids, so logit KD pairs token for token: its
vocabulary is never changed, only extended at the end with what the pipeline needs and the
teacher lacks (see `pretrained_tokenizer`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import (
    AddedToken,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    trainers,
)
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from distillab.config.constants import (  # noqa: F401 - re-exported: the data layer's names
    BOS,
    EOS,
    OTHER,
    PAD,
    PRETRAINED,
    SELF,
    SPECIAL_TOKENS,
    TRAINED,
    UNK,
)
from distillab.config.constants import TOKENIZER_KINDS as KINDS  # noqa: F401
from distillab.errors import ConfigError, check_choice
from distillab.utils.io import fingerprint


def train_tokenizer(
    texts: Iterable[str], kind: str, vocab_size: int, min_frequency: int = 2, lowercase: bool = True
) -> PreTrainedTokenizerFast:
    """Byte-level BPE (lossless decoding) or WordPiece, trained with the `tokenizers` library."""
    check_choice("data.tokenizer", kind, TRAINED)
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


def pretrained_tokenizer(path: str, key: str = "data.tokenizer_path") -> PreTrainedTokenizerFast:
    """A local Hugging Face tokenizer prepared for the dialogue pipeline (offline only).

    Required: a fast tokenizer with an `eos_token` (the end of a response, which teacher and
    student must both emit; no stand-in keeps the teacher's probabilities meaningful).
    Supplied where absent, always after the teacher's ids so none of them moves:
    `bos` = `eos` (GPT-2's convention; only the decoder's first input), a new `[PAD]` when
    there is none or it is `eos` (pads are masked, so EOS must differ), a new `[UNK]`, and the
    speaker markers `<self>`/`<other>`. The teacher never scores an added id (they never occur
    in targets); `HFTeacher` feeds it markers as its EOS (the turn separator of DialoGPT-style
    models) and gives added ids zero probability.
    """
    if not Path(path).is_dir():
        raise ConfigError(
            f"{key}={path}: no such directory (a local tokenizer directory is needed; "
            "hub names are not fetched: save the model and tokenizer with save_pretrained)"
        )
    try:
        tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except Exception as e:  # noqa: BLE001 - transformers raises many kinds for a bad directory
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError(f"{key}={path}: cannot load a tokenizer there ({reason})") from None
    if not getattr(tok, "is_fast", False):
        raise ConfigError(f"{key}={path}: a fast tokenizer (tokenizer.json) is needed")
    if tok.eos_token is None:
        raise ConfigError(
            f"{key}={path}: the tokenizer has no eos_token (the end of a response that the "
            "teacher and the student share); set one in its tokenizer_config.json"
        )
    if tok.bos_token is None:
        tok.bos_token = tok.eos_token
    if tok.pad_token is None or tok.pad_token_id in (tok.eos_token_id, tok.bos_token_id):
        tok.add_special_tokens({"pad_token": PAD})
    if tok.unk_token is None:
        tok.add_special_tokens({"unk_token": UNK})
    vocab = tok.get_vocab()
    markers = [AddedToken(m, special=True) for m in (SELF, OTHER) if m not in vocab]
    if markers:
        tok.add_tokens(markers, special_tokens=True)
    return tok


def tokenizer_identity(tok: PreTrainedTokenizerFast) -> str:
    """Everything that decides how text becomes ids (model, normalizer, added tokens, the
    special-token roles): keys the encoded corpus built with a pretrained tokenizer."""
    roles = {r: getattr(tok, f"{r}_token") for r in ("pad", "unk", "bos", "eos")}
    return fingerprint(tok.backend_tokenizer.to_str(), roles)


def vocab_hash(tok: PreTrainedTokenizerFast) -> str:
    """The fingerprint that teachers and data compare (logit KD pairs ids one to one)."""
    return fingerprint(sorted(tok.get_vocab().items()))


def special_ids(tok: PreTrainedTokenizerFast) -> tuple[int, int, int, int, int, int]:
    """pad, unk, bos, eos, <self>, <other> ids."""
    markers = tok.convert_tokens_to_ids([SELF, OTHER])
    return (tok.pad_token_id, tok.unk_token_id, tok.bos_token_id, tok.eos_token_id, *markers)

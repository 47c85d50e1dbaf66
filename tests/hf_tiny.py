"""Tiny random Hugging Face models saved with a tokenizer, as a user's local teacher would be."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from tests.conftest import synthetic_conversations


def tiny_tokenizer(kind: str) -> PreTrainedTokenizerFast:
    """A word-level tokenizer of the synthetic corpus with BART's (`bart`) or GPT-2's (`gpt2`:
    eos only, no pad/unk/bos) special tokens."""
    special = ["<s>", "<pad>", "</s>", "<unk>"] if kind == "bart" else ["<|endoftext|>"]
    tok = Tokenizer(models.WordLevel(unk_token="<unk>" if kind == "bart" else None))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    texts = [t for c in synthetic_conversations() for t in c["turns"]] + ["x y z ? !"]
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=special))
    if kind == "bart":
        roles = dict(bos_token="<s>", pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    else:
        roles = dict(eos_token="<|endoftext|>")
    return PreTrainedTokenizerFast(tokenizer_object=tok, **roles)


def save_tiny(kind: str, out: Path, layers: int = 1) -> Path:
    """A random `bart` (encoder-decoder) or `gpt2` (causal LM) of a few thousand weights per
    layer (`layers` in each stack)."""
    import torch
    from transformers import BartConfig, BartForConditionalGeneration, GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    tok = tiny_tokenizer(kind)
    n = len(tok)
    if kind == "bart":
        ids = tok.convert_tokens_to_ids(["<s>", "<pad>", "</s>"])
        config = BartConfig(
            vocab_size=n,
            d_model=16,
            encoder_layers=layers,
            decoder_layers=layers,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=32,
            decoder_ffn_dim=32,
            max_position_embeddings=128,
            bos_token_id=ids[0],
            pad_token_id=ids[1],
            eos_token_id=ids[2],
            decoder_start_token_id=ids[2],
            forced_eos_token_id=None,
        )
        model = BartForConditionalGeneration(config)
    else:
        eos = tok.eos_token_id
        config = GPT2Config(
            vocab_size=n,
            n_embd=16,
            n_layer=layers,
            n_head=2,
            n_positions=128,
            bos_token_id=eos,
            eos_token_id=eos,
        )
        model = GPT2LMHeadModel(config)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out

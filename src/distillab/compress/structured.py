"""Structured pruning of :class:`~distillab.models.Seq2Seq`: whole hidden units go, so the model
really is smaller and faster (``compress.mode=structured``).

One ``hidden_size`` sizes the encoder's outputs, the decoder's GRU, the attentional states
and the heads, so all of them shrink to the new size together: per unit group, the units whose
incoming weights (all GRU gates, all layers) have the smallest L1 norm are removed, chosen by
``torch.nn.utils.prune.LnStructured``, and every tensor that reads a group loses the matching
columns. Embeddings keep their width.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils import prune

from distillab.errors import ConfigError
from distillab.losses.terms import HiddenStateMSE
from distillab.models import Seq2Seq

SHRINKABLE = ("additive", "multiplicative")  # attention kinds whose units `shrink` narrows


def unit_rows(weight: Tensor, units: int) -> Tensor:
    """A GRU weight ``[3 * units, in]`` (gates r, z, n stacked) as ``[units, 3 * in]``."""
    return weight.view(3, units, -1).transpose(0, 1).reshape(units, -1)


def keep_units(incoming: list[Tensor], n_keep: int) -> Tensor:
    """Sorted indices of the ``n_keep`` units (rows of each ``[units, *]`` matrix, side by
    side) with the largest L1 norm: the rows ``LnStructured`` leaves unmasked."""
    rows = torch.cat([m.detach().reshape(m.size(0), -1) for m in incoming], dim=1)
    n_prune = rows.size(0) - n_keep
    mask = prune.LnStructured(amount=n_prune, n=1, dim=0).compute_mask(rows, torch.ones_like(rows))
    return mask[:, 0].nonzero().squeeze(1)


def gate_rows(t: Tensor, units: int, keep: Tensor) -> Tensor:
    """The rows of ``keep``'s units in each of the 3 stacked gates of ``t [3 * units, ...]``."""
    return t.view(3, units, *t.shape[1:])[:, keep].reshape(3 * len(keep), *t.shape[1:])


def copy_gru(old: nn.GRU, new: nn.GRU, keep: Tensor, keep_in: list[Tensor | None]) -> None:
    """``new``'s weights: ``old``'s rows of the ``keep`` units, columns ``keep_in[layer]`` of
    each layer's input (None: all) and ``keep`` of the recurrent input."""
    units = old.hidden_size
    for layer in range(old.num_layers):
        cols = keep_in[layer]
        w_ih = gate_rows(getattr(old, f"weight_ih_l{layer}"), units, keep)
        w_hh = gate_rows(getattr(old, f"weight_hh_l{layer}"), units, keep)[:, keep]
        getattr(new, f"weight_ih_l{layer}").copy_(w_ih if cols is None else w_ih[:, cols])
        getattr(new, f"weight_hh_l{layer}").copy_(w_hh)
        for kind in ("ih", "hh"):
            getattr(new, f"bias_{kind}_l{layer}").copy_(
                gate_rows(getattr(old, f"bias_{kind}_l{layer}"), units, keep)
            )


def copy_linear(old: nn.Linear, new: nn.Linear, rows: Tensor | None, cols: Tensor | None):
    w = old.weight if rows is None else old.weight[rows]
    new.weight.copy_(w if cols is None else w[:, cols])
    if old.bias is not None:
        new.bias.copy_(old.bias if rows is None else old.bias[rows])


def model_args(model: Seq2Seq) -> dict:
    """The constructor arguments ``model`` was built with (read from its parts)."""
    enc, dec = model.encoder, model.decoder
    return dict(
        vocab_size=model.vocab_size,
        pad_id=model.pad_id,
        emb_dim=model.embedding.embedding_dim,
        hidden_size=model.hidden_size,
        enc_layers=enc.num_layers,
        dec_layers=model.dec_layers,
        bidirectional=enc.bidirectional,
        dropout=model.emb_dropout.p,
        residual=enc.residual,
        attention=dec.attention.kind,
        attention_heads=getattr(dec.attention, "heads", None),
        self_id=model.self_id,
        other_id=model.other_id,
        tie_embeddings=model.tie_embeddings,
        num_topics=model.topic_head[-1].out_features if model.topic_head is not None else 0,
        rating_head=model.rating_head is not None,
        conversation_bag=model.conversation_bag,
    )


class HiddenUnitPruning:
    """Removes ``sparsity`` of the hidden units (rounded, kept even for a bidirectional
    encoder): ``prune(model, 0.5)`` returns a new model of half the ``hidden_size``.

    It cannot mask a model that is training (``gradual = False``); it ``shrinks``: the
    compression step runs it after training, in one step or in stages, each followed by
    fine-tuning of the new model (`distillab.compress.schedule.structured_stages`)."""

    gradual = False  # no masks in place: never during training
    shrinks = True  # returns a new, smaller model (and, from `shrink`, the encoder units kept)

    def prune(self, model: Seq2Seq, sparsity: float) -> Seq2Seq:
        return self.shrink(model, sparsity)[0]

    def width(self, model: Seq2Seq) -> int:
        """What it shrinks: the hidden size."""
        return int(model.hidden_size)

    def model_config(self, model: Seq2Seq) -> dict:
        """The model-config keys that rebuild the shrunk model (its checkpoint's)."""
        return {"hidden_size": int(model.hidden_size)}

    @torch.no_grad()
    def shrink(self, model: Seq2Seq, sparsity: float) -> tuple[Seq2Seq, Tensor]:
        """(the smaller model, indices of the encoder output units it keeps): what reads the
        encoder states outside the model (a hidden-state projection) narrows to them."""
        if not isinstance(model, Seq2Seq):
            raise ConfigError(
                f"compress.mode=structured removes a GRU's hidden units; {type(model).__name__} "
                "has none (a transformer student: compress.mode=heads)"
            )
        args = model_args(model)
        if args["attention"] not in SHRINKABLE:
            raise ConfigError(
                f"structured pruning of hidden units supports model.attention in {SHRINKABLE}, "
                f"not {args['attention']!r}"
            )
        old_h, step = args["hidden_size"], 2 if args["bidirectional"] else 1
        new_h = max(step, round(old_h * (1.0 - sparsity) / step) * step)
        new = Seq2Seq(**{**args, "hidden_size": new_h}).eval()
        enc, new_enc = model.encoder, new.encoder
        units, new_units = old_h // step, new_h // step
        directions = [(enc.fwd, new_enc.fwd)] + ([(enc.bwd, new_enc.bwd)] if step == 2 else [])
        keep_dir = [
            keep_units(
                [unit_rows(w, units) for g in grus for w in (g.weight_ih_l0, g.weight_hh_l0)],
                new_units,
            )
            for grus, _ in directions
        ]
        enc_idx = torch.cat([k + i * units for i, k in enumerate(keep_dir)])  # encoder outputs
        for (grus, new_grus), keep in zip(directions, keep_dir, strict=True):
            for layer, (g, ng) in enumerate(zip(grus, new_grus, strict=True)):
                copy_gru(g, ng, keep, [None if layer == 0 else enc_idx])
        gru = model.decoder.gru
        dec_in = [
            unit_rows(getattr(gru, f"weight_{k}_l{layer}"), old_h)
            for layer in range(gru.num_layers)
            for k in ("ih", "hh")
        ]
        dec = keep_units(dec_in, new_h)
        copy_gru(gru, new.decoder.gru, dec, [None] + [dec] * (gru.num_layers - 1))
        layers = model.dec_layers
        bridge_rows = torch.cat([dec + layer * old_h for layer in range(layers)])
        copy_linear(model.bridge, new.bridge, bridge_rows, enc_idx)
        att, new_att = model.decoder.attention, new.decoder.attention
        copy_linear(att.key_proj, new_att.key_proj, dec, enc_idx)
        if att.kind == "additive":
            copy_linear(att.query_proj, new_att.query_proj, dec, dec)
            copy_linear(att.v, new_att.v, None, dec)
        comb = model.decoder.combine
        out_units = keep_units([comb.weight], new_h)
        copy_linear(comb, new.decoder.combine, out_units, torch.cat([dec, old_h + enc_idx]))
        new.embedding.weight.copy_(model.embedding.weight)
        if model.out is not None:
            copy_linear(model.out, new.out, None, out_units)
        else:
            copy_linear(model.out_proj, new.out_proj, None, out_units)
            new.out_bias.copy_(model.out_bias)
        # the heads read the encoder units, then (conversation_bag) features kept whole
        extra = new.topic_head or new.rating_head
        n_extra = extra[0].in_features - new_h if extra is not None else 0
        head_idx = torch.cat([enc_idx, old_h + torch.arange(n_extra)])
        for head, new_head in (
            (model.topic_head, new.topic_head),
            (model.rating_head, new.rating_head),
        ):
            if head is not None:
                mid = keep_units([head[0].weight], new_head[0].out_features)
                copy_linear(head[0], new_head[0], mid, head_idx)
                copy_linear(head[2], new_head[2], None, mid)
        return new.train(model.training), enc_idx


@torch.no_grad()
def narrow_projections(objective: nn.Module, units: Tensor, old_width: int) -> None:
    """Hidden-state transfer terms (`distill=hidden`) of ``objective`` read the student's
    encoder states through ``nn.Linear(student, teacher)`` (none when the widths were equal:
    an identity): each becomes a projection from the ``units`` kept, the same map on them."""
    for term in objective.modules():
        if not isinstance(term, HiddenStateMSE):
            continue
        old = term.projection
        weight = old.weight if old is not None else torch.eye(old_width, device=units.device)
        new = nn.Linear(len(units), weight.size(0)).to(weight.device)
        new.weight.copy_(weight[:, units.to(weight.device)])
        if old is not None and old.bias is not None:
            new.bias.copy_(old.bias)
        else:
            new.bias.zero_()
        term.projection = new

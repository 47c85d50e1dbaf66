"""An ``nn.GRU``'s weights through its public attributes: the flat list its own forward hands
to ``torch.gru`` (the ONNX export calls that op directly) and the names pruning may zero."""

from __future__ import annotations

from torch import Tensor, nn


def gru_weights(gru: nn.GRU) -> list[Tensor]:
    """Every weight and bias, per layer and direction, in the order ``torch.gru`` reads them
    (``nn.GRU.all_weights``); a masked (pruned) weight is its current masked tensor."""
    return [w for layer in gru.all_weights for w in layer]


def gru_weight_names(gru: nn.GRU) -> list[str]:
    """The weight matrices ``weight_ih_l<k>[_reverse]`` and ``weight_hh_l<k>[_reverse]`` in the
    GRU's parameter order; the names stay the same while pruning masks them."""
    directions = ("", "_reverse") if gru.bidirectional else ("",)
    return [
        f"weight_{kind}_l{layer}{direction}"
        for layer in range(gru.num_layers)
        for direction in directions
        for kind in ("ih", "hh")
    ]

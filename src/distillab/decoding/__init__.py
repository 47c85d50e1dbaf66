"""Decoding strategies, apart from the models they decode.

A strategy is a small callable object built from the ``decoding`` config group
(``conf/decoding/{greedy,beam,sample}.yaml``)::

    tokens = Beam(beam_size=4)(model, src, src_mask, bos_id=1, eos_id=2, max_len=32)

and works with any model implementing the :class:`Decodable` protocol (``encode``, ``step``,
``reorder``; see :mod:`distillab.decoding.protocol`).
"""

from distillab.decoding.base import banned_bias, build_strategy
from distillab.decoding.beam import Beam
from distillab.decoding.greedy import Greedy
from distillab.decoding.protocol import Decodable, Strategy
from distillab.decoding.sample import Sample

__all__ = ["Beam", "Decodable", "Greedy", "Sample", "Strategy", "banned_bias", "build_strategy"]

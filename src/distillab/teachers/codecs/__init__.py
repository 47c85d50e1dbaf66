"""Codecs of the teacher-output cache (`teachers.cache`): one file per codec, chosen by
`_target_` (`conf/distill/codec/`)."""

from distillab.teachers.codecs.base import Codec, Layout
from distillab.teachers.codecs.compact import Compact
from distillab.teachers.codecs.exact import Exact

__all__ = ["Codec", "Compact", "Exact", "Layout"]

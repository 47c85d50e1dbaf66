"""Codecs of the teacher-output cache (`teachers.cache`): one file per codec, chosen by
`_target_` (`conf/distill/codec/`)."""

from distillab.teachers.codecs.base import Codec, Layout
from distillab.teachers.codecs.compact import Compact
from distillab.teachers.codecs.exact import Exact
from distillab.teachers.codecs.residual import Residual

__all__ = ["Codec", "Compact", "Exact", "Layout", "Residual"]

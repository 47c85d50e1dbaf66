"""Teachers: frozen models that score a batch for a student.

A teacher is one class implementing :class:`Teacher`, chosen in config by `_target_`
(`conf/teacher/`). `CheckpointTeacher` (a distillab Lightning checkpoint), `HFTeacher` (a local transformers
model);
`CachedTeacher` serves a teacher's precomputed top-k outputs through the same interface.
"""

from distillab.teachers.base import Teacher, check_vocab
from distillab.teachers.cached import CachedTeacher
from distillab.teachers.checkpoint import CheckpointTeacher
from distillab.teachers.hf import HFTeacher
from distillab.teachers.outputs import CachedOutput, LogitsOutput, TeacherOutput, combine_outputs

__all__ = [
    "CachedOutput",
    "CachedTeacher",
    "CheckpointTeacher",
    "HFTeacher",
    "LogitsOutput",
    "Teacher",
    "TeacherOutput",
    "check_vocab",
    "combine_outputs",
]

"""Every config error surfaces here, before any work: no data is read or tokenised, no teacher
trained, nothing written outside the fresh run directory.

`validate(cfg)` runs in `distillab-train` before the job and raises `ConfigError` with one line
naming the key, the value and what is allowed:

- **nodes with a `_target_`** (data and its source, model, optimizer, scheduler, trainer,
  teacher, logger and callbacks entries, `distill.objective.terms.*`, any other top-level
  target such as `decoding`): the target must import, the node's keys must be parameters of it
  (closest names suggested), and values must match its plain annotations (int, float, bool,
  str, Literal, Optional of those);
- **nodes without one** (module, task, distill, student, paths, teacher.train, extra_teachers
  entries, the top-level scalars): the schemas (`schemas`);
- **ranges and choices** (`*_RANGES`, `check_distill_objective`), **combinations**
  (`check_teacher_outputs`, distillation jobs only), **files** (data.path, teacher
  checkpoints) and the **output root** (created and written to, last).

The checks live in small modules: `fields` (a key's type/range/choices, schema checks),
`schemas` (the tables), `targets` (`_target_` nodes), `groups`, `teacher`, `distill`,
`compress` (per-group checks), `paths` (files and directories), `config` (`validate`) and
`evaluation` (`validate_eval`).
"""

from distillab.validate.config import validate
from distillab.validate.distill import check_teacher_outputs
from distillab.validate.evaluation import validate_eval

__all__ = ["check_teacher_outputs", "validate", "validate_eval"]

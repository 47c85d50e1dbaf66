"""A run directory's lifecycle, above the jobs and below the CLIs: what `status.json` records,
whether a directory may be reused or resumed, and a job run with its status kept.

`distillab-train resume=RUN_DIR` runs RUN_DIR's saved, resolved `config.yaml` again with
`resume` set: the job trains from `RUN_DIR/checkpoints/last.ckpt` (weights, optimiser,
scheduler, loop and sampler position, RNG states) up to the configured final step and writes
its results there. The CLI points Hydra's run directory at RUN_DIR (its log file continues) and
keeps Hydra's record of the resuming invocation in a fresh `.hydra/resume_<time>` folder.

A job whose own run directory already holds its interrupted run (`status.json`: interrupted,
and `checkpoints/last.ckpt`) continues it the same way, without `resume=`: a SLURM job that
submitit requeued after a time limit or preemption runs again with the same overrides in the
same job directory. Its config must be the run's (`config.yaml`), else it is refused with the
keys that differ. A run directory that finished or failed is never reused.

`status.json` in a run directory says whether the run finished: `running`, `finished`,
`failed` (with the error) or `interrupted` (with the signal and how to resume), written
atomically by rank 0 only.

- `distillab.runs.state`: what a run directory holds; the checks made before any work.
- `distillab.runs.resume`: the config a resumed or requeued job runs.
- `distillab.runs.tracked`: a job run with `status.json` kept and interruptions handled.
"""

"""A distributed job under submitit (`hydra/launcher=slurm`, `tasks_per_node` > 1) whose rank
died: submitit's launcher waits for a result file from every task, and without Slurm
accounting it cannot see that a killed task ended, so it would poll forever. Rank 0, which has
recorded the job `failed` in `status.json`, writes the missing tasks' result files (the
launcher keeps rank 0's own result, so the sweep goes on and its report lists the job failed)."""

from __future__ import annotations

import time

from distillab.utils.console import log

GRACE_S = 5.0  # a rank that is still alive writes its own result within this


def release_lost_ranks(grace_s: float = GRACE_S) -> list[int]:
    """Rank 0 of a failed multi-task submitit job: the ranks that wrote no result file within
    `grace_s`, now given one; [] outside such a job."""
    try:
        import submitit
        from submitit.core.utils import JobPaths, cloudpickle_dump
    except ImportError:
        return []
    try:
        env = submitit.JobEnvironment()
    except RuntimeError:  # not a submitit job
        return []
    if env.num_tasks < 2 or env.global_rank != 0:
        return []
    folder = env.paths.folder
    pending = {r: JobPaths(folder, job_id=env.job_id, task_id=r) for r in range(1, env.num_tasks)}
    deadline = time.time() + grace_s
    while time.time() < deadline and any(not p.result_pickle.exists() for p in pending.values()):
        time.sleep(0.5)
    lost = [r for r, p in pending.items() if not p.result_pickle.exists()]
    for rank in lost:
        # the job's outcome is rank 0's (its status.json says failed); this only ends the wait
        cloudpickle_dump(("success", None), pending[rank].result_pickle)
    if lost:
        log.warning(
            f"distillab: ranks {lost} of this job ended without a result (killed?): their "
            "result files are written so that the launcher stops waiting; the job is failed"
        )
    return lost

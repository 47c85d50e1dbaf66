"""Concurrent requests decoded together: requests wait in a queue; a batch is taken when it
holds `max_batch` requests or `max_wait` seconds after its first one arrived, and decoded in
one worker thread by `export.generate.decode_steps` (one encoder run and one decoder run per
step for the whole batch; onnxruntime releases the GIL, so the event loop keeps serving
meanwhile). A streaming request gets each of its tokens as the step that chose it ends."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from distillab.export.generate import Row, decode_steps, reply_ids


@dataclass
class Job:
    """One request in the queue: `done` gets `(ids, stopped)`; `tokens`, if set, each id as
    it is decoded and then None."""

    row: Row
    done: asyncio.Future
    tokens: asyncio.Queue | None = None
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.get_running_loop)


class Batcher:
    def __init__(self, model: Any, max_batch: int, max_wait_s: float) -> None:
        self.model = model
        self.max_batch = max_batch
        self.max_wait = max_wait_s
        self.queue: asyncio.Queue[Job] = asyncio.Queue()
        self.task: asyncio.Task | None = None
        self.batches = 0  # batches decoded (and their sizes, for the log and the benchmark)
        self.rows = 0

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def submit(self, row: Row, stream: bool = False) -> Job:
        loop = asyncio.get_running_loop()
        job = Job(row, loop.create_future(), asyncio.Queue() if stream else None, loop)
        await self.queue.put(job)
        return job

    async def next_batch(self) -> list[Job]:
        batch = [await self.queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while len(batch) < self.max_batch:
            if not self.queue.empty():
                batch.append(self.queue.get_nowait())
                continue
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self.queue.get(), left))
            except asyncio.TimeoutError:  # noqa: UP041 - Python 3.10: not the builtin
                break
        return batch

    async def run(self) -> None:
        while True:
            batch = await self.next_batch()
            self.batches += 1
            self.rows += len(batch)
            await asyncio.to_thread(self.decode, batch)

    def decode(self, batch: list[Job]) -> None:
        """Runs in the worker thread; hands results back to the loop thread-safely."""
        m = self.model
        try:
            steps: list[list[int]] = [[] for _ in batch]
            for tok in decode_steps(m, [j.row for j in batch]):
                for i, job in enumerate(batch):
                    t = int(tok[i])
                    steps[i].append(t)
                    if job.tokens is not None and t != m.pad_id:
                        job.loop.call_soon_threadsafe(job.tokens.put_nowait, t)
            for job, toks in zip(batch, steps, strict=True):
                result = reply_ids(toks, m.eos_id, m.pad_id)
                job.loop.call_soon_threadsafe(settle, job, result, None)
        except Exception as e:  # noqa: BLE001 - every waiting request hears of it, not the loop
            for job in batch:
                job.loop.call_soon_threadsafe(settle, job, None, e)


def settle(job: Job, result: Any, error: BaseException | None) -> None:
    if job.tokens is not None:
        job.tokens.put_nowait(None)
    if job.done.done():
        return
    if error is not None:
        job.done.set_exception(error)
    else:
        job.done.set_result(result)

"""Background training: a worker thread fills a lock-guarded :class:`Job` with plain data.

No Streamlit here. The page keeps a :class:`JobStore` in ``st.cache_resource`` and polls the job
of its session (by id) with a fragment; a reload finds the job again through the id in the URL.
The worker never touches Streamlit: it only calls ``core.training.train`` and writes data.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from core.errors import InitlabError
from core.experiment import ExperimentConfig

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
MAX_JOBS = 24  # finished jobs beyond this many are forgotten, oldest first
MAX_LIVE_ROWS = 200_000  # live rows kept per table while training (the final result has them all)

TrainFn = Callable[..., Any]


def _default_train(*args: Any, **kwargs: Any) -> Any:
    from core import training  # imported late: looked up at call time so tests can swap it

    return training.train(*args, **kwargs)


@dataclass(frozen=True)
class JobSnapshot:
    """An immutable copy of a job's state for one page render."""

    id: str
    status: str
    version: int
    step: int
    total_steps: int
    epoch: int
    message: str
    messages: tuple[str, ...]
    result: Any  # core.results.ExperimentResult once finished (also when cancelled), else None
    error: str | None
    config: ExperimentConfig
    started_at: float
    finished_at: float | None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0


@dataclass
class Job:
    """One experiment trained in a background thread. All fields are guarded by ``_lock``."""

    config: ExperimentConfig
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    train_fn: TrainFn = _default_train
    threads: int | None = 1
    registry: Any = None  # passed to train when set (the dashboard's registry, failures allowed)
    status: str = QUEUED
    version: int = 0
    step: int = 0
    total_steps: int = 0
    epoch: int = 0
    messages: list[str] = field(default_factory=list)
    result: Any = None
    error: str | None = None
    error_detail: str = ""
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    _steps_rows: list[dict] = field(default_factory=list)
    _evals_rows: list[dict] = field(default_factory=list)
    _frames: dict[str, tuple[int, pd.DataFrame]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Job:
        """Start the worker thread (once)."""
        with self._lock:
            if self._thread is not None:
                return self
            self._thread = threading.Thread(target=self._work, name=f"initlab-job-{self.id}", daemon=True)
            self.status = RUNNING
            self.version += 1
        self._thread.start()
        return self

    def _work(self) -> None:
        try:
            kwargs: dict[str, Any] = {
                "progress": self.on_progress,
                "cancel": self.cancel_event,
                "threads": self.threads,
            }
            if self.registry is not None:
                kwargs["registry"] = self.registry
            result = self.train_fn(self.config, **kwargs)
        except InitlabError as exc:  # a config, dataset or plugin problem: the message says it all
            self._finish(FAILED, error=str(exc), detail=traceback.format_exc())
        except Exception as exc:  # an engine bug: still a message, never a crash of the page
            log.exception("training job %s failed", self.id)
            self._finish(FAILED, error=f"training stopped: {type(exc).__name__}: {exc}", detail=traceback.format_exc())
        else:
            cancelled = bool(getattr(result, "cancelled", False)) or self.cancel_event.is_set()
            self._finish(CANCELLED if cancelled else DONE, result=result)

    def _finish(self, status: str, *, result: Any = None, error: str | None = None, detail: str = "") -> None:
        with self._lock:
            self.status = status
            self.result = result
            self.error = error
            self.error_detail = detail
            self.finished_at = time.time()
            self.version += 1

    def on_progress(self, update: Any) -> None:
        """The ``progress`` callback of ``train``: record a ``ProgressUpdate``'s plain data."""
        with self._lock:
            self.step = int(update.step)
            self.total_steps = int(update.total_steps)
            self.epoch = int(update.epoch)
            if len(self._steps_rows) < MAX_LIVE_ROWS:
                self._steps_rows.extend(dict(r) for r in update.steps_rows)
            if len(self._evals_rows) < MAX_LIVE_ROWS:
                self._evals_rows.extend(dict(r) for r in update.evals_rows)
            if update.message:
                self.messages.append(str(update.message))
            self.version += 1

    def cancel(self) -> None:
        """Ask the worker to stop after its current step; the partial result is kept."""
        self.cancel_event.set()
        with self._lock:
            self.version += 1

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker; True when it has finished."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.snapshot().finished

    # -- reading -------------------------------------------------------------------------------
    def snapshot(self) -> JobSnapshot:
        with self._lock:
            return JobSnapshot(
                id=self.id,
                status=self.status,
                version=self.version,
                step=self.step,
                total_steps=self.total_steps,
                epoch=self.epoch,
                message=self.messages[-1] if self.messages else "",
                messages=tuple(self.messages),
                result=self.result,
                error=self.error,
                config=self.config,
                started_at=self.started_at,
                finished_at=self.finished_at,
            )

    def live_frame(self, name: str) -> pd.DataFrame:
        """The rows received so far for ``steps`` or ``evals``, as a DataFrame (cached per version)."""
        if name not in ("steps", "evals"):
            raise ValueError(f"live tables are 'steps' and 'evals', got {name!r}")
        with self._lock:
            cached = self._frames.get(name)
            if cached is not None and cached[0] == self.version:
                return cached[1]
            rows = list(self._steps_rows if name == "steps" else self._evals_rows)
            version = self.version
        frame = pd.DataFrame(rows)
        with self._lock:
            self._frames[name] = (version, frame)
        return frame


class JobStore:
    """Jobs by id, shared by every session of the server process (ids are random, so never mixed)."""

    def __init__(self, max_jobs: int = MAX_JOBS) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self.max_jobs = max_jobs
        self.started = 0  # how many jobs this store has started (tests count retraining with it)

    def submit(
        self,
        config: ExperimentConfig,
        *,
        train_fn: TrainFn | None = None,
        threads: int | None = 1,
        registry: Any = None,
    ) -> Job:
        """Create and start a job for ``config``."""
        job = Job(config=config, train_fn=train_fn or _default_train, threads=threads, registry=registry)
        with self._lock:
            self._jobs[job.id] = job
            self.started += 1
            self._prune()
        return job.start()

    def get(self, job_id: str | None) -> Job | None:
        if not job_id:
            return None
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                self._jobs.move_to_end(job_id)
            return job

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)

    def _prune(self) -> None:
        """Forget the oldest finished jobs beyond ``max_jobs`` (running ones are kept)."""
        excess = len(self._jobs) - self.max_jobs
        for job_id in list(self._jobs):
            if excess <= 0:
                break
            if self._jobs[job_id].snapshot().finished:
                del self._jobs[job_id]
                excess -= 1

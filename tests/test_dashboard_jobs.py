"""The background job: progress written from a worker thread, cancel, failures as messages, the store."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from core.errors import ConfigError
from core.experiment import ExperimentConfig, RunConfig
from dashboard.jobs import CANCELLED, DONE, FAILED, Job, JobStore

CONFIG = ExperimentConfig(runs=(RunConfig("zeros", "tanh"),))


@dataclass
class Update:
    step: int
    total_steps: int
    epoch: int = 0
    steps_rows: list = field(default_factory=list)
    evals_rows: list = field(default_factory=list)
    message: str = ""


def fake_train(n_steps: int, gate: threading.Event | None = None):
    """A stand-in for core.training.train that reports one row per step and honours cancel."""

    def train(config, *, progress, cancel, threads):
        assert threads == 1
        for step in range(1, n_steps + 1):
            if gate is not None:
                gate.wait(5)
            if cancel.is_set():
                return SimpleNamespace(cancelled=True, steps_done=step - 1)
            progress(Update(step, n_steps, steps_rows=[{"run": "r", "step": step, "train_loss": 1.0 / step}]))
        return SimpleNamespace(cancelled=False, steps_done=n_steps)

    return train


def test_job_runs_to_completion_and_keeps_every_row():
    job = Job(CONFIG, train_fn=fake_train(200)).start()
    assert job.join(10)
    snap = job.snapshot()
    assert snap.status == DONE and snap.step == 200 and snap.fraction == 1.0
    assert snap.result.steps_done == 200
    steps = job.live_frame("steps")
    assert list(steps["step"]) == list(range(1, 201))


def test_progress_from_many_threads_loses_nothing():
    # 8 writers x 500 updates, each adding one row: a race on the list or the version would lose some
    job = Job(CONFIG)
    barrier = threading.Barrier(8)

    def writer(w: int) -> None:
        barrier.wait()
        for i in range(500):
            job.on_progress(Update(i, 500, steps_rows=[{"run": f"w{w}", "step": i, "train_loss": 0.0}]))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(job.live_frame("steps")) == 8 * 500
    assert job.snapshot().version == 8 * 500


def test_live_frame_is_cached_until_the_version_changes():
    job = Job(CONFIG)
    job.on_progress(Update(1, 10, steps_rows=[{"run": "r", "step": 1, "train_loss": 2.0}]))
    first = job.live_frame("steps")
    assert job.live_frame("steps") is first
    job.on_progress(Update(2, 10, steps_rows=[{"run": "r", "step": 2, "train_loss": 1.0}]))
    assert len(job.live_frame("steps")) == 2
    with pytest.raises(ValueError, match="steps"):
        job.live_frame("layers")


def test_cancel_stops_the_worker_and_keeps_the_partial_result():
    gate = threading.Event()
    job = Job(CONFIG, train_fn=fake_train(10_000, gate)).start()
    job.cancel()
    gate.set()
    assert job.join(10)
    snap = job.snapshot()
    assert snap.status == CANCELLED
    assert snap.result.steps_done < 10_000


def test_a_config_error_becomes_a_message_not_an_exception():
    def broken(config, **kwargs):
        raise ConfigError("runs[0].initializer", "unknown initializer 'nope'")

    job = Job(CONFIG, train_fn=broken).start()
    assert job.join(10)
    snap = job.snapshot()
    assert snap.status == FAILED
    assert snap.error == "runs[0].initializer: unknown initializer 'nope'"
    assert snap.result is None


def test_an_engine_crash_is_reported_with_its_type():
    def crash(config, **kwargs):
        raise RuntimeError("out of cheese")

    job = Job(CONFIG, train_fn=crash).start()
    job.join(10)
    assert job.snapshot().error == "training stopped: RuntimeError: out of cheese"


def test_store_keeps_jobs_apart_and_forgets_only_finished_ones():
    store = JobStore(max_jobs=2)
    gate = threading.Event()
    running = store.submit(CONFIG, train_fn=fake_train(5, gate))
    done = [store.submit(CONFIG, train_fn=fake_train(1)) for _ in range(3)]
    for job in done:
        job.join(10)
    store.submit(CONFIG, train_fn=fake_train(1)).join(10)
    assert store.get(running.id) is running  # still running: never forgotten
    assert store.get(done[0].id) is None  # oldest finished: forgotten
    assert store.started == 5
    assert len({j.id for j in done} | {running.id}) == 4  # every job has its own id
    gate.set()
    running.join(10)
    assert store.get(None) is None and store.get("nope") is None

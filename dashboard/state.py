"""Session state: the form's widget values <-> an ExperimentConfig, the job of this session, the URL.

Widget values live under fixed keys (``cfg.*`` for experiment settings, ``run<slot>.*`` for the
runs), so loading a config (from a link, or a preset via :func:`request_config`) just writes the
keys before the widgets are drawn. The config a page shows is always read back with
:func:`read_config`.

The training length is one number (``cfg.length``) and its unit (``cfg.length_unit``: ``epochs``,
or ``steps`` for an exact step count, as the presets use); ``snapshots`` and ``eval_every`` may be
empty (None: the engine's default). The dashboard's own default is an explicit 10 snapshots, so
the step sliders always go from initialization to the end of training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import streamlit as st

from core.errors import ConfigError, InitlabError
from core.experiment import ExperimentConfig, RunConfig
from core.registry import Registry, get_registry
from dashboard import param_widgets, query, views
from dashboard.jobs import Job, JobStore
from dashboard.preset_runs import find_preset

DEFAULT_RUNS = ("zeros", "small_normal", "large_normal", "xavier_uniform", "he_normal")
DEFAULT_ACTIVATION = "tanh"
DEFAULT_CONFIG = ExperimentConfig(
    runs=tuple(RunConfig(name, DEFAULT_ACTIVATION) for name in DEFAULT_RUNS),
    dataset="digits",
    depth=5,
    width=64,
    optimizer="sgd",
    lr=0.1,
    momentum=0.0,
    batch_size=64,
    epochs=5,
    seed=0,
    snapshots=10,  # explicit, so the step sliders always go from initialization to the end of training
)
SCALAR_FIELDS = (
    "depth",
    "width",
    "optimizer",
    "lr",
    "momentum",
    "batch_size",
    "seed",
    "bias_init",
    "bias_value",
)
OPTIONAL_FIELDS = ("snapshots", "eval_every")  # int or None (empty widget: the engine decides)
# Training length: one number and its unit; the unit "steps" sets ``steps`` (exact step count).
LENGTH = "cfg.length"
LENGTH_UNIT = "cfg.length_unit"
LENGTH_UNITS = ("epochs", "steps")
KEPT_EPOCHS = "cfg.kept_epochs"  # a config's ``epochs`` while the form trains for steps (not a widget)
JOB_ID = "job_id"
SLOTS = "cfg.run_slots"
NEXT_SLOT = "cfg.next_slot"
PENDING = "_pending_config"
BOOTSTRAPPED = "_bootstrapped"
NOTICES = "_notices"


@st.cache_resource(show_spinner=False)
def job_store() -> JobStore:
    """The process-wide job store (one per server; each session only knows its own job id)."""
    return JobStore()


def registry() -> Registry:
    """The plugin registry; failures are kept on ``.errors`` and shown, never raised."""
    return get_registry(allow_failures=True)


# -- widget keys ---------------------------------------------------------------------------------


def key(name: str) -> str:
    return f"cfg.{name}"


def dataset_prefix(dataset: str) -> str:
    return f"cfg.dataset_params.{dataset}"


def run_key(slot: int, name: str) -> str:
    return f"run{slot}.{name}"


def init_prefix(slot: int, initializer: str) -> str:
    return f"run{slot}.init.{initializer}"


def act_prefix(slot: int, activation: str) -> str:
    return f"run{slot}.act.{activation}"


def slots() -> list[int]:
    return list(st.session_state.get(SLOTS, []))


# -- config -> widgets -----------------------------------------------------------------------------


def apply_config(config: ExperimentConfig, reg: Registry) -> None:
    """Write ``config`` into the widgets' state (call before the widgets are drawn in this run)."""
    ss = st.session_state
    ss[key("dataset")] = config.dataset
    for name in SCALAR_FIELDS:
        ss[key(name)] = getattr(config, name)
    for name in ("lr", "momentum", "bias_value"):
        ss[key(name)] = float(ss[key(name)])
    for name in OPTIONAL_FIELDS:
        ss[key(name)] = getattr(config, name)
    ss[LENGTH_UNIT] = "epochs" if config.steps is None else "steps"
    ss[LENGTH] = config.epochs if config.steps is None else config.steps
    ss[KEPT_EPOCHS] = config.epochs
    if config.dataset in reg.datasets:
        spec = reg.datasets[config.dataset]
        param_widgets.seed_params(spec.params, dataset_prefix(config.dataset), config.dataset_params, overwrite=True)
    for old in slots():
        for name in ("initializer", "activation"):
            ss.pop(run_key(old, name), None)
    new_slots = list(range(len(config.runs)))
    for slot, run in zip(new_slots, config.runs, strict=True):
        ss[run_key(slot, "initializer")] = run.initializer
        ss[run_key(slot, "activation")] = run.activation
        if run.initializer in reg.initializers:
            spec = reg.initializers[run.initializer]
            param_widgets.seed_params(spec.params, init_prefix(slot, run.initializer), run.init_params, overwrite=True)
        if run.activation in reg.activations:
            spec = reg.activations[run.activation]
            param_widgets.seed_params(
                spec.params, act_prefix(slot, run.activation), run.activation_params, overwrite=True
            )
    ss[SLOTS] = new_slots
    ss[NEXT_SLOT] = len(new_slots)


def read_config(reg: Registry) -> ExperimentConfig:
    """The config the widgets describe now (plugin parameters as the widgets hold them)."""
    ss = st.session_state
    dataset = ss.get(key("dataset"), DEFAULT_CONFIG.dataset)
    dataset_params = {}
    if dataset in reg.datasets:
        dataset_params = param_widgets.read_params(reg.datasets[dataset].params, dataset_prefix(dataset))
    runs = []
    for slot in slots():
        initializer = ss.get(run_key(slot, "initializer"))
        activation = ss.get(run_key(slot, "activation"))
        if not initializer or not activation:
            continue
        init_params = {}
        act_params = {}
        if initializer in reg.initializers:
            init_params = param_widgets.read_params(
                reg.initializers[initializer].params, init_prefix(slot, initializer)
            )
        if activation in reg.activations:
            act_params = param_widgets.read_params(reg.activations[activation].params, act_prefix(slot, activation))
        run = RunConfig(initializer, activation, init_params, act_params)
        runs.append(replace(run, label=short_label(run, reg)))
    scalars = {name: ss.get(key(name), getattr(DEFAULT_CONFIG, name)) for name in (*SCALAR_FIELDS, *OPTIONAL_FIELDS)}
    if scalars["eval_every"] == 0:  # the form's "0 = once per epoch"
        scalars["eval_every"] = None
    length = ss.get(LENGTH, DEFAULT_CONFIG.epochs)
    if ss.get(LENGTH_UNIT) == "steps":
        scalars.update(steps=length, epochs=ss.get(KEPT_EPOCHS, DEFAULT_CONFIG.epochs))
    else:
        scalars.update(steps=None, epochs=length)
    return ExperimentConfig(runs=tuple(runs), dataset=dataset, dataset_params=dataset_params, **scalars)


def short_label(run: RunConfig, reg: Registry) -> str:
    """The run's compact form without parameters left at their defaults (``he_normal@relu``)."""

    def changed(params, values):
        defaults = {p.name: p.default for p in params}
        return {k: v for k, v in values.items() if k not in defaults or v != defaults[k]}

    init = reg.initializers.get(run.initializer)
    act = reg.activations.get(run.activation)
    init_params = changed(init.params, run.init_params) if init else run.init_params
    act_params = changed(act.params, run.activation_params) if act else run.activation_params
    return RunConfig(run.initializer, run.activation, init_params, act_params).compact()


def default_config(reg: Registry) -> ExperimentConfig:
    """The first-load story, keeping only the schemes and activation this registry has."""
    runs = tuple(r for r in DEFAULT_CONFIG.runs if r.initializer in reg.initializers)
    activation = DEFAULT_ACTIVATION if DEFAULT_ACTIVATION in reg.activations else next(iter(reg.activations), "")
    runs = tuple(RunConfig(r.initializer, activation) for r in runs)
    if not runs and reg.initializers:
        runs = (RunConfig(next(iter(reg.initializers)), activation),)
    dataset = DEFAULT_CONFIG.dataset if DEFAULT_CONFIG.dataset in reg.datasets else next(iter(reg.datasets), "")
    return replace(DEFAULT_CONFIG, runs=runs, dataset=dataset)


def sanitize(config: ExperimentConfig, reg: Registry) -> tuple[ExperimentConfig, list[str]]:
    """Drop what this registry cannot run (unknown names, bad parameter values), saying why."""
    problems: list[str] = []
    base = default_config(reg)
    if config.dataset not in reg.datasets:
        problems.append(f"dataset {config.dataset!r} is not registered; using {base.dataset!r}")
        config = replace(config, dataset=base.dataset, dataset_params={})
    runs = []
    for i, run in enumerate(config.runs):
        single = ExperimentConfig(runs=(run,), dataset=config.dataset)
        try:
            runs.append(single.validated(reg).runs[0])
        except ConfigError as exc:
            problems.append(f"run {i + 1} ({run.compact()}) was left out: {exc}")
    config = replace(config, runs=tuple(runs) or base.runs)
    try:
        config.validated(reg)
    except ConfigError as exc:
        problems.append(f"the link's settings were not used ({exc}); loaded the defaults instead")
        return base, problems
    return config, problems


# -- bootstrap, pending configs, jobs ----------------------------------------------------------------


def request_config(config: ExperimentConfig, *, train: bool = False) -> None:
    """Load ``config`` into the form at the start of the next run (and train it if ``train``).

    The hook for other pages (e.g. Reproductions): call it from a button callback, or before
    ``st.rerun()``.
    """
    st.session_state[PENDING] = (config, train)


def notices() -> list[str]:
    """Messages collected while loading the page (ignored link values and the like)."""
    return st.session_state.setdefault(NOTICES, [])


def bootstrap(reg: Registry) -> None:
    """First run of a session: read the URL (config and job); every run: apply a pending config."""
    ss = st.session_state
    if not ss.get(BOOTSTRAPPED):
        ss[BOOTSTRAPPED] = True
        params = {k: st.query_params.get_all(k) for k in st.query_params}
        config = default_config(reg)
        if query.has_config(params):
            decoded, problems = query.decode(params, config)
            config, more = sanitize(decoded, reg)
            notices().extend(f"Link: {p}." for p in problems + more)
        apply_config(config, reg)
        job_id = st.query_params.get(query.JOB_KEY)
        if job_id:
            job = job_store().get(job_id)
            if job is not None:
                ss[JOB_ID] = job_id
                if find_preset(job.config) is None:  # a reloaded preset run stays on its page
                    views.open_results_tab()
            else:
                notices().append(
                    "The training job in this link is no longer in memory (the server restarted or "
                    "forgot it); press Train to run the experiment again."
                )
                del st.query_params[query.JOB_KEY]
    pending = ss.pop(PENDING, None)
    if pending is not None:
        config, train = pending
        config, problems = sanitize(config, reg)
        notices().extend(problems)
        apply_config(config, reg)
        if train:
            outcome = start_training(config, reg)
            if outcome.error:
                notices().append(f"Not started: {outcome.error}")


def current_job() -> Job | None:
    return job_store().get(st.session_state.get(JOB_ID))


def write_url(config: ExperimentConfig, job_id: str | None) -> None:
    """Mirror ``config`` (and the job id) in the query string, leaving other keys alone."""
    encoded = query.encode(config)
    for name in list(st.query_params):
        if (name in query.CONFIG_KEYS or name.startswith(query.DATASET_PARAM_PREFIX)) and name not in encoded:
            del st.query_params[name]
    for name, value in encoded.items():
        st.query_params[name] = value
    if job_id:
        st.query_params[query.JOB_KEY] = job_id


@dataclass(frozen=True)
class StartOutcome:
    """The job that started, or why none did (a ConfigError's message naming the field)."""

    job: Job | None
    error: str | None


def start_training(
    config: ExperimentConfig, reg: Registry, *, train_fn: Callable[..., Any] | None = None
) -> StartOutcome:
    """Validate ``config``, cancel this session's running job, start a new one and remember its id."""
    try:
        validated = config.validated(reg)
    except InitlabError as exc:
        return StartOutcome(None, str(exc))
    previous = current_job()
    if previous is not None and not previous.snapshot().finished:
        previous.cancel()
    job = job_store().submit(validated, train_fn=train_fn, registry=reg)
    st.session_state[JOB_ID] = job.id
    write_url(validated, job.id)
    return StartOutcome(job, None)

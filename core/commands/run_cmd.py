"""``initlab run``: train an experiment headless, print a summary table, write JSON/CSV results.

The experiment comes from flags, from ``--config FILE`` (TOML or JSON, the format
``ExperimentConfig.to_dict()`` writes), or both: flags given explicitly override the file's
values (see ``docs/cli.md`` for the exact rules). Bad input is reported as
``initlab: error: FIELD: what was wrong; allowed: ...`` with exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.experiment import ExperimentConfig, RunConfig

DEFAULT_ACTIVATION = "relu"
EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

# ExperimentConfig field -> (flag, argparse type); the flag's value replaces the field when given.
SCALAR_FLAGS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "dataset": ("--dataset", str),
    "depth": ("--depth", int),
    "width": ("--width", int),
    "optimizer": ("--optimizer", str),
    "lr": ("--lr", float),
    "momentum": ("--momentum", float),
    "batch_size": ("--batch-size", int),
    "epochs": ("--epochs", int),
    "steps": ("--steps", int),
    "seed": ("--seed", int),
    "bias_init": ("--bias-init", str),
    "bias_value": ("--bias-value", float),
    "snapshots": ("--snapshots", int),
    "eval_every": ("--eval-every", int),
    "divergence_threshold": ("--divergence-threshold", float),
    "dtype": ("--dtype", str),
    "name": ("--name", str),
}
FIELD_FLAGS = {name: flag for name, (flag, _) in SCALAR_FLAGS.items()} | {
    "runs": "--schemes",
    "dataset_params": "--dataset-param",
}
_HELP = {
    "dataset": "dataset name (`initlab plugins` lists them)",
    "depth": "hidden layers, 1-100",
    "width": "units per hidden layer, 1-4096",
    "optimizer": "sgd or adam",
    "lr": "learning rate, 1e-6 to 10",
    "momentum": "SGD momentum, 0 to 0.999",
    "batch_size": "mini-batch size, 1-65536",
    "epochs": "passes over the training set, 1-1000",
    "steps": "train exactly this many optimizer steps instead of --epochs",
    "seed": "seed of initialization and batch order",
    "bias_init": "zeros, constant (see --bias-value) or pytorch_default",
    "bias_value": "bias value for --bias-init constant",
    "snapshots": "instrumented snapshot steps after step 0, 0-200",
    "eval_every": "steps between evaluations",
    "divergence_threshold": "a loss above this (or NaN/Inf) marks a run diverged",
    "dtype": "float32 or float64",
    "name": "experiment name stored in the results",
}
_DEFAULT_TEXT = {"snapshots": "the engine's cadence", "eval_every": "once per epoch", "steps": "unset"}


def _help(name: str) -> str:
    default = _DEFAULT_TEXT.get(name, getattr(ExperimentConfig, name, None))
    return f"{_HELP[name]} (default: {default})" if default not in (None, "") else _HELP[name]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="train an experiment headless and print a summary",
        description="Train several initialization schemes side by side and summarize how each one trained. "
        "Runs are written initializer[(k=v,...)][@activation[(k=v,...)]], comma-separated, "
        "e.g. --schemes 'xavier_uniform,he_normal(mode=fan_out)@leaky_relu(negative_slope=0.1)'. "
        "With --config FILE, flags given explicitly override the file's values.",
    )
    parser.add_argument(
        "--schemes",
        action="append",
        metavar="RUNS",
        help="comma-separated runs: initializer[(k=v,...)][@activation[(k=v,...)]] (repeatable)",
    )
    parser.add_argument("--activation", help=f"activation of runs written without '@' (default {DEFAULT_ACTIVATION})")
    parser.add_argument(
        "--dataset-param",
        action="append",
        metavar="KEY=VALUE",
        help="a dataset parameter, e.g. path=/data/mnist (repeatable)",
    )
    for name, (flag, kind) in SCALAR_FLAGS.items():
        parser.add_argument(flag, dest=name, type=kind, help=_help(name))
    parser.add_argument("--config", metavar="FILE", help="experiment file (.toml or .json); flags override it")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config as TOML and exit")
    parser.add_argument("--threads", type=int, help="torch CPU threads for training (default: torch's choice)")
    parser.add_argument("--out", metavar="FILE", help="write the full results as JSON")
    parser.add_argument("--csv", metavar="DIR", help="write one CSV per results table into DIR")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no live messages")
    parser.set_defaults(func=run_command)


# -- building the config ---------------------------------------------------------------------------


def split_runs(text: str) -> list[str]:
    """Split a ``--schemes`` value on the commas that are not inside parentheses."""
    parts: list[str] = []
    depth, start = 0, 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise ConfigError("schemes (--schemes)", f"unbalanced ')' in {text!r}")
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise ConfigError("schemes (--schemes)", f"unclosed '(' in {text!r}")
    parts.append(text[start:])
    runs = [p.strip() for p in parts]
    if any(not p for p in runs):
        raise ConfigError("schemes (--schemes)", f"empty run in {text!r}; separate runs with single commas")
    return runs


def parse_runs(values: list[str], activation: str) -> tuple[RunConfig, ...]:
    """Every ``--schemes`` value, split and parsed into runs."""
    runs = []
    for value in values:
        for text in split_runs(value):
            runs.append(RunConfig.parse(text, default_activation=activation, where="schemes (--schemes)"))
    return tuple(runs)


def parse_key_values(items: list[str], field: str) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}`` (values stay strings; the dataset's Params coerce them)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(field, f"expected KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def build_config(args: argparse.Namespace) -> ExperimentConfig:
    """The experiment: the ``--config`` file (or the defaults), then every flag given explicitly on top."""
    base = ExperimentConfig.load(args.config) if args.config else None
    overrides: dict[str, Any] = {
        name: getattr(args, name) for name in SCALAR_FLAGS if getattr(args, name, None) is not None
    }
    if args.schemes:
        overrides["runs"] = parse_runs(args.schemes, args.activation or DEFAULT_ACTIVATION)
    elif base is None:
        raise ConfigError("schemes (--schemes)", "required: name the runs to train, or give --config FILE")
    elif args.activation:
        # No --schemes: --activation replaces the activation of every run from the file.
        overrides["runs"] = tuple(_with_activation(run, args.activation) for run in base.runs)
    if base is None:
        base = ExperimentConfig(runs=overrides["runs"])
    if "epochs" in overrides and "steps" not in overrides:
        overrides["steps"] = None  # an explicit --epochs beats a `steps` from the file
    dataset_params: dict[str, Any] = {}
    if base is not None and overrides.get("dataset", base.dataset) == base.dataset:
        dataset_params = dict(base.dataset_params)  # the file's dataset params only fit the file's dataset
    if args.dataset_param:
        dataset_params.update(parse_key_values(args.dataset_param, "dataset_params (--dataset-param)"))
    overrides["dataset_params"] = dataset_params
    return dataclasses.replace(base, **overrides)


def _with_activation(run: RunConfig, activation: str) -> RunConfig:
    """``run`` with another activation (its activation params dropped). A label that is the run's own
    compact form (``he_normal@relu``, as ``--print-config`` writes it) follows the change."""
    if run.activation == activation:
        return run
    label = run.label
    if label:
        try:
            written = RunConfig.parse(label, default_activation=run.activation)
        except ConfigError:
            written = None
        if written is not None and (written.initializer, written.activation) == (run.initializer, run.activation):
            label = f"{label.partition('@')[0]}@{activation}"
    return dataclasses.replace(run, activation=activation, activation_params={}, label=label)


def _with_flag(exc: ConfigError, config: ExperimentConfig | None) -> ConfigError:
    """Say which flag (or which run) a field comes from: ``depth (--depth): got 0; allowed: ...``."""
    field = exc.field
    if "(--" in field:
        return exc
    if field in FIELD_FLAGS:
        where = f"{field} ({FIELD_FLAGS[field]})"
    elif field.startswith("runs[") and config is not None:
        index = int(field[5 : field.index("]")])
        where = f"{field} (run {config.runs[index].compact()!r})" if index < len(config.runs) else field
    else:
        return exc
    return ConfigError(where, str(exc).removeprefix(f"{field}: "))


# -- checking before training ----------------------------------------------------------------------


def _check_outputs(args: argparse.Namespace) -> None:
    if args.threads is not None and not 1 <= args.threads <= 1024:
        raise ConfigError("threads (--threads)", f"got {args.threads}; allowed: an integer in [1, 1024]")
    if args.out:
        folder = Path(args.out).expanduser().resolve().parent
        if not folder.is_dir():
            raise ConfigError("out (--out)", f"folder {str(folder)!r} does not exist")
    if args.csv and Path(args.csv).exists() and not Path(args.csv).is_dir():
        raise ConfigError("csv (--csv)", f"{args.csv!r} exists and is not a folder")


# -- training with progress and Ctrl-C -------------------------------------------------------------


class _Progress:
    """Drives a rich progress bar on stderr from ProgressUpdate callbacks (thread-safe; rich locks)."""

    def __init__(self, show_bar: bool, show_messages: bool, runs: int) -> None:
        from rich.console import Console

        self.console = Console(file=sys.stderr)
        self.show_messages = show_messages
        self.bar = None
        self.task = None
        self.last_step = 0  # optimizer steps done, from the latest update
        if show_bar:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("steps"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.task = self.bar.add_task(f"training {runs} run{'s' * (runs != 1)}", total=None)

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __call__(self, update: Any) -> None:
        self.last_step = max(self.last_step, update.step)
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, completed=update.step, total=update.total_steps)
        message = getattr(update, "message", "")
        if message and self.show_messages:
            self.console.print(message, markup=False, highlight=False)


def _train_in_thread(train: Callable[..., Any], cancel: threading.Event, **kwargs: Any) -> tuple[Any, bool]:
    """Train in a worker thread so Ctrl-C lands here: it sets ``cancel`` and waits for the partial result.

    Returns ``(result, interrupted)``. A second Ctrl-C gives up waiting.
    """
    outcome: dict[str, Any] = {}
    done = threading.Event()  # not Thread.join: an interrupted join can wrongly mark the thread stopped (3.11)

    def work() -> None:
        try:
            outcome["result"] = train(cancel=cancel, **kwargs)
        except BaseException as exc:  # re-raised in the main thread
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name="initlab-train", daemon=True).start()
    interrupted = False
    try:
        while not done.wait(0.1):
            pass
    except KeyboardInterrupt:
        interrupted = True
        cancel.set()
        print("\ninitlab: interrupted; stopping after the current step (Ctrl-C again to quit)", file=sys.stderr)
        done.wait()  # a second KeyboardInterrupt propagates to core.cli.main -> exit 130
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result"), interrupted


# -- output ------------------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def summary_table(result: Any) -> Any:
    """A rich Table: run id, status, final train loss, final val accuracy, step it diverged at, diagnosis."""
    from rich.table import Table

    table = Table()
    longest_id = max((len(r.id) for r in result.runs), default=3)
    # (header, justify, min width): the run id and the diagnosis get room before the numbers shrink.
    for header, justify, min_width in (
        ("run", "left", min(16, longest_id)),
        ("status", "left", None),
        ("loss", "right", None),
        ("val acc", "right", None),
        ("diverged", "right", None),
        ("diagnosis", "left", 10),
    ):
        table.add_column(header, justify=justify, overflow="fold", min_width=min_width)
    styles = {"ok": "green", "diverged": "red", "failed": "red", "cancelled": "yellow"}
    for run in result.runs:
        diagnosis = run.diagnosis or {}
        table.add_row(
            run.id,
            f"[{styles.get(run.status, 'white')}]{run.status}[/]",
            _fmt(run.final_train_loss, ".4g"),
            _fmt(run.final_val_accuracy, ".1%"),
            "-" if run.diverged_at_step is None else str(run.diverged_at_step),
            str(diagnosis.get("label", "-")),
        )
    return table


def _final_line(result: Any, steps: int, seconds: float) -> str:
    counts: dict[str, int] = {}
    for run in result.runs:
        counts[run.status] = counts.get(run.status, 0) + 1
    statuses = ", ".join(f"{n} {status}" for status, n in counts.items())
    runs = f"{len(result.runs)} run{'s' * (len(result.runs) != 1)}"
    if result.cancelled:
        return f"initlab: cancelled after {steps} steps: {runs} in {seconds:.1f} s ({statuses})"
    return f"initlab: trained {runs}, {steps} steps, in {seconds:.1f} s ({statuses})"


def _write_outputs(result: Any, args: argparse.Namespace, console: Any) -> None:
    """Write ``--out`` and ``--csv``; a failure to write is reported like bad input (no traceback)."""
    if args.out:
        try:
            result.save_json(args.out)
        except OSError as exc:
            raise ConfigError("out (--out)", f"cannot write {args.out!r}: {exc.strerror or exc}") from None
        console.print(f"initlab: wrote {args.out}", markup=False, highlight=False)
    if args.csv:
        try:
            paths = result.to_csv(Path(args.csv))
        except OSError as exc:
            raise ConfigError("csv (--csv)", f"cannot write into {args.csv!r}: {exc.strerror or exc}") from None
        console.print(f"initlab: wrote {len(paths)} CSV files to {args.csv}", markup=False, highlight=False)


# -- the command -----------------------------------------------------------------------------------


def run_command(args: argparse.Namespace) -> int:
    from rich.console import Console

    from core.registry import get_registry

    config = None
    try:
        config = build_config(args)
        _check_outputs(args)
        registry = get_registry()
        config = config.validated(registry)
    except ConfigError as exc:
        raise _with_flag(exc, config) from None
    if args.print_config:
        print(config.to_toml(), end="")
        return EXIT_OK
    from core.training import load_bundle, train

    bundle = load_bundle(config, registry)  # DatasetError (missing folder, corrupt file) -> exit 2
    config.check_memory(bundle.num_features, bundle.num_classes)  # before training, with the estimate

    stdout = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200)
    stderr = Console(file=sys.stderr)
    show_bar = not args.quiet and stderr.is_terminal
    cancel = threading.Event()
    started = time.perf_counter()
    with _Progress(show_bar, not args.quiet, len(config.runs)) as progress:
        result, interrupted = _train_in_thread(
            train, cancel, config=config, registry=registry, progress=progress, bundle=bundle, threads=args.threads
        )
    seconds = time.perf_counter() - started
    stdout.print(summary_table(result))
    for run in result.runs:
        if run.error:
            stdout.print(f"{run.id}: {run.error}", markup=False, highlight=False)
    _write_outputs(result, args, stderr)
    stderr.print(_final_line(result, progress.last_step, seconds), markup=False, highlight=False)
    return EXIT_INTERRUPTED if interrupted else EXIT_OK

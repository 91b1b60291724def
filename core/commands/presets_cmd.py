"""``initlab presets``: list the reproductions, or train one and check its claim.

``initlab presets [--json]`` lists every preset (slug, title, claim, config file, variants).
``initlab presets run SLUG [--variant V] [--seed N] [--out FILE]`` trains it, prints the runs and a
table of its checks, and exits 0 when every check passes, 1 when one fails (2 for bad input, 130
when interrupted). The config files are ordinary experiment configs: ``initlab run --config PATH``
trains the same experiment without the checks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

from core.errors import ConfigError

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
PIPED_WIDTH = 200


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "presets",
        help="list the reproductions, or run one and check its claim",
        description="The reproductions of classic initialization results. Without a subcommand, list them "
        "(slug, title, claim, config file). 'initlab presets run SLUG' trains one, prints a table of its "
        "checks (measured value, threshold, pass/fail) and exits 0 if all pass, 1 otherwise. Each config file "
        "also runs as 'initlab run --config FILE'.",
    )
    parser.add_argument("--json", action="store_true", help="list the presets as JSON")
    parser.set_defaults(func=list_command)
    commands = parser.add_subparsers(dest="presets_command", metavar="SUBCOMMAND")
    listing = commands.add_parser("list", help="list the presets (the default)")
    listing.add_argument("--json", action="store_true", help="list the presets as JSON")
    listing.set_defaults(func=list_command)
    run = commands.add_parser(
        "run",
        help="train a preset and check its claim",
        description="Train a preset, print its runs and the table of its checks; exit 0 if every check "
        "passes, 1 if one fails.",
    )
    run.add_argument("slug", metavar="SLUG", help="the preset ('initlab presets' lists them)")
    run.add_argument("--variant", help="one of the preset's variants (e.g. adam for he2015_fig3)")
    run.add_argument("--seed", type=int, help="replace the config file's seed")
    run.add_argument("--threads", type=int, help="torch CPU threads for training (default: torch's choice)")
    run.add_argument("--out", metavar="FILE", help="write the full results as JSON")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    run.set_defaults(func=run_command)


# -- listing -------------------------------------------------------------------------------------------


def preset_document(preset: Any) -> dict[str, Any]:
    """A preset as plain data (what ``--json`` prints)."""
    return {
        "slug": preset.slug,
        "title": preset.title,
        "claim": preset.claim,
        "config": str(preset.path),
        "where": preset.where,
        "variants": [{"slug": v.slug, "title": v.title} for v in preset.variants],
    }


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it, else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _write(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `initlab presets | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def list_command(args: argparse.Namespace) -> int:
    from core.presets import all_presets

    presets = all_presets()
    if args.json:
        _write(json.dumps([preset_document(p) for p in presets], indent=2, ensure_ascii=False) + "\n")
        return EXIT_PASSED
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for header in ("slug", "title", "claim", "config"):
        table.add_column(header, overflow="fold")
    for preset in presets:
        variants = ", ".join(v.slug for v in preset.variants)
        slug = preset.slug + (f"\n(variants: {variants})" if variants else "")
        table.add_row(slug, preset.title, preset.claim, display_path(preset.path))
    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else PIPED_WIDTH)
    console.print(table)
    console.print(
        "Train one and check it: initlab presets run SLUG [--variant V]; the config alone: initlab run --config FILE",
        markup=False,
        highlight=False,
    )
    return EXIT_PASSED


# -- running -------------------------------------------------------------------------------------------


def checks_table(outcomes: list[Any]) -> Any:
    """A rich Table of check outcomes: run, check, measured, threshold, result."""
    from rich.table import Table

    table = Table()
    for header, justify in (
        ("run", "left"),
        ("check", "left"),
        ("measured", "right"),
        ("threshold", "left"),
        ("result", "left"),
    ):
        table.add_column(header, justify=justify, overflow="fold")
    for outcome in outcomes:
        verdict = "[green]pass[/]" if outcome.passed else "[bold red]FAIL[/]"
        table.add_row(outcome.run or "", outcome.name, outcome.value_text(), outcome.threshold, verdict)
    return table


def run_command(args: argparse.Namespace) -> int:
    from rich.console import Console

    from core.commands.run_cmd import _Progress, _train_in_thread, summary_table
    from core.presets import get_preset
    from core.registry import get_registry
    from core.training import train

    preset = get_preset(args.slug)
    if args.threads is not None and not 1 <= args.threads <= 1024:
        raise ConfigError("threads (--threads)", f"got {args.threads}; allowed: an integer in [1, 1024]")
    if args.out and not Path(args.out).expanduser().resolve().parent.is_dir():
        folder = Path(args.out).expanduser().resolve().parent
        raise ConfigError("out (--out)", f"folder {str(folder)!r} does not exist")
    overrides = {} if args.seed is None else {"seed": args.seed}
    config = preset.config(args.variant, **overrides).validated(get_registry())
    stdout = Console(file=sys.stdout, width=None if sys.stdout.isatty() else PIPED_WIDTH)
    stderr = Console(file=sys.stderr)
    name = preset.slug + (f" (variant {args.variant})" if args.variant else "")
    stdout.print(f"preset {name}: {preset.title}", markup=False, highlight=False)
    stdout.print(f"claim: {preset.claim}", markup=False, highlight=False)
    stdout.print(f"config: {display_path(preset.path)}", markup=False, highlight=False)
    show_bar = not args.quiet and stderr.is_terminal
    with _Progress(show_bar, not args.quiet, len(config.runs)) as progress:
        result, interrupted = _train_in_thread(
            train, threading.Event(), config=config, progress=progress, threads=args.threads
        )
    stdout.print(summary_table(result))
    if args.out:
        result.save_json(args.out)
        stdout.print(f"initlab: wrote {args.out}", markup=False, highlight=False)
    if interrupted or result.cancelled:
        stderr.print("initlab: interrupted; the claim was not checked", markup=False, highlight=False)
        return EXIT_INTERRUPTED
    outcomes = preset.check(result, args.variant)
    stdout.print(checks_table(outcomes))
    failed = [o for o in outcomes if not o.passed]
    summary = f"initlab: preset {name}: {len(outcomes) - len(failed)}/{len(outcomes)} checks passed"
    stdout.print(summary + ("" if not failed else f", {len(failed)} FAILED"), markup=False, highlight=False)
    return EXIT_FAILED if failed else EXIT_PASSED

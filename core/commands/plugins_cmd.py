"""``initlab plugins [--json]``: what is registered, by which plugin, and what failed to load."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from core.registry import ENV_ALLOW, ENV_STRICT, get_registry

ITEM_COLUMNS = ("kind", "name", "plugin", "distribution", "version", "description")
ERROR_COLUMNS = ("plugin", "distribution", "version", "stage", "message")
SHORT_MESSAGE_CHARS = 240
DESCRIPTION_CHARS = 70
PIPED_WIDTH = 200


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plugins",
        help="list registered initializers, activations and datasets, then plugin errors",
        description=(
            "List every registered item (kind, name, plugin, distribution, version, description), then every "
            f"plugin failure. Exit status 0, or 1 under {ENV_STRICT}=1 when any plugin failed. "
            f"{ENV_ALLOW}=a,b narrows which third-party plugins load."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object {items, errors} with tracebacks")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    registry = get_registry(allow_failures=True)
    document = registry.to_json()
    try:
        if args.json:
            sys.stdout.write(json.dumps(document, indent=2) + "\n")
        else:
            sys.stdout.write(render_text(document))
        sys.stdout.flush()
    except BrokenPipeError:  # `initlab plugins | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if registry.strict and registry.errors:
        print(
            f"initlab: {len(registry.errors)} plugin failure(s) and {ENV_STRICT} is set: failing",
            file=sys.stderr,
        )
        return 1
    return 0


def short_message(message: str, limit: int = SHORT_MESSAGE_CHARS) -> str:
    """The first line of ``message``, cut to ``limit`` characters."""
    first = message.strip().splitlines()[0] if message.strip() else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"


def render_text(document: dict[str, Any]) -> str:
    """Readable tables: items, then errors with short messages (``--json`` has the tracebacks)."""
    from rich.console import Console

    # In a terminal the table fits its width (descriptions cut with "…"); piped, lines stay whole.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else PIPED_WIDTH)
    with console.capture() as captured:
        _print_tables(console, document)
    return "".join(line.rstrip() + "\n" for line in captured.get().splitlines())


def _print_tables(console: Any, document: dict[str, Any]) -> None:
    from rich.table import Table

    items = Table(title=f"{len(document['items'])} registered item(s)", title_justify="left")
    for column in ITEM_COLUMNS:
        if column == "description":
            items.add_column(column, overflow="ellipsis", no_wrap=True, min_width=20, max_width=DESCRIPTION_CHARS)
        else:
            items.add_column(column, overflow="fold")
    for row in document["items"]:
        items.add_row(*(_cell(row.get(column)) for column in ITEM_COLUMNS))
    console.print(items)

    errors = document["errors"]
    if not errors:
        console.print("No plugin errors.")
        return
    table = Table(title=f"{len(errors)} plugin error(s)", title_justify="left", show_lines=True)
    for column in ERROR_COLUMNS:
        table.add_column(column, overflow="fold", ratio=1 if column == "message" else None)
    for error in errors:
        row = dict(error, message=short_message(error.get("message", "")))
        table.add_row(*(_cell(row.get(column)) for column in ERROR_COLUMNS))
    console.print(table)
    console.print("Run `initlab plugins --json` for tracebacks; docs/plugins.md explains each message.")


def _cell(value: object) -> str:
    from rich.markup import escape

    return "" if value is None else escape(str(value))

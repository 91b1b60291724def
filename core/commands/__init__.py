"""CLI subcommands: each module exposes ``add_parser(subparsers)`` which sets ``func`` on its parser."""

COMMAND_MODULES = ("core.commands.plugins_cmd", "core.commands.run_cmd", "core.commands.presets_cmd")

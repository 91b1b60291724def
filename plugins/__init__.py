"""initlab's built-in plugins, registered through the same hooks a third-party plugin uses."""

DEFAULT_PLUGINS: tuple[str, ...] = (
    "plugins.initializers",
    "plugins.activations",
    "plugins.datasets",
)

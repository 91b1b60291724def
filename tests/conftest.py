"""Shared test set-up: one torch thread (two cores, parallel jobs), a clean plugin environment."""

from __future__ import annotations

import os

import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")

_PLUGIN_ENV = ("INITLAB_LOAD_PLUGINS", "INITLAB_STRICT_PLUGINS", "INITLAB_PLUGINS_DIR")


@pytest.fixture(autouse=True)
def _clean_plugin_env(monkeypatch: pytest.MonkeyPatch):
    """Tests start with no INITLAB_* plugin settings and a fresh registry cache."""
    from core.registry import reset_registry

    for name in _PLUGIN_ENV:
        monkeypatch.delenv(name, raising=False)
    reset_registry()
    yield
    reset_registry()

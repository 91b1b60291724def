"""The Reproductions page's plain logic (no Streamlit): which preset a job is, and what its card shows.

Everything about a preset (config, claim, checks) comes from :mod:`core.presets`; this module only
decides which preset (and variant) the session's job ran, and turns check outcomes into a badge and
a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from core.experiment import ExperimentConfig
from core.presets import CheckOutcome, Preset, all_presets

# What a preset's card shows (see :func:`card_state`).
NOT_RUN = "not_run"  # the session's job is another experiment (or there is none): "run this preset to check it"
OTHER_VARIANT = "other_variant"  # the job is this preset, but not the variant selected on the card
RUNNING = "running"
CHECKED = "checked"  # finished: the badge and the checks
CANCELLED = "cancelled"
FAILED = "failed"  # training stopped with an error


@dataclass(frozen=True)
class PresetMatch:
    """A preset and the variant (None: as shipped) whose experiment a config is."""

    preset: Preset
    variant: str | None

    @property
    def title(self) -> str:
        chosen = self.preset.variant(self.variant)
        return self.preset.title + (f" ({chosen.title})" if chosen else "")


@dataclass(frozen=True)
class _ConfigOnly:
    """What ``Preset.mismatch`` reads from a result, for a config that has not finished training."""

    config: ExperimentConfig
    cancelled: bool = False


def find_preset(config: ExperimentConfig | None, presets: Sequence[Preset] | None = None) -> PresetMatch | None:
    """The preset and variant whose experiment ``config`` is (``Preset.mismatch``: same runs and
    settings; the seed may differ), or None for any other experiment."""
    if config is None:
        return None
    probe = _ConfigOnly(config)
    for preset in all_presets() if presets is None else presets:
        for variant in (None, *(v.slug for v in preset.variants)):
            if not preset.mismatch(probe, variant):
                return PresetMatch(preset, variant)
    return None


@dataclass(frozen=True)
class CardState:
    """What one preset's card shows for the session's job."""

    status: str
    outcomes: tuple[CheckOutcome, ...] = ()
    ran_variant: str | None = None  # for OTHER_VARIANT: the variant the job ran
    error: str | None = None

    @property
    def passed(self) -> bool | None:
        """True/False once checked, None otherwise."""
        if self.status != CHECKED:
            return None
        return all(o.passed for o in self.outcomes)


def card_state(preset: Preset, variant: str | None, job: Any) -> CardState:
    """The card of ``preset`` with ``variant`` selected, given the session's job snapshot (or None).

    Only a job whose config is this preset's experiment with this variant gets checks (through
    ``preset.check``, which refuses anything else); every other experiment is NOT_RUN.
    """
    match = find_preset(job.config) if job is not None else None
    if match is None or match.preset.slug != preset.slug:
        return CardState(NOT_RUN)
    if match.variant != variant:
        return CardState(OTHER_VARIANT, ran_variant=match.variant)
    if not job.finished:
        return CardState(RUNNING)
    result = job.result
    if result is None:
        return CardState(FAILED, error=job.error or "training produced no result")
    if result.cancelled:
        return CardState(CANCELLED)
    return CardState(CHECKED, tuple(preset.check(result, variant)))


def badge_text(outcomes: Sequence[CheckOutcome]) -> tuple[bool, str]:
    """(passed, one line): "PASS — all 9 checks hold" or "FAIL — 2 of 9 checks do not hold"."""
    failed = sum(not o.passed for o in outcomes)
    if not outcomes:
        return False, "FAIL — no checks were computed"
    if failed == 0:
        return True, f"PASS — all {len(outcomes)} checks hold"
    return False, f"FAIL — {failed} of {len(outcomes)} checks do not hold"


OUTCOME_COLUMNS = ["run", "check", "measured", "threshold", "result"]
PASS_TEXT, FAIL_TEXT = "pass", "FAIL"


def outcomes_frame(outcomes: Sequence[CheckOutcome]) -> pd.DataFrame:
    """One row per check: run, check, measured value (as text), threshold, pass/FAIL."""
    rows = [
        {
            "run": o.run or "all runs",
            "check": o.name,
            "measured": o.value_text(),
            "threshold": o.threshold,
            "result": PASS_TEXT if o.passed else FAIL_TEXT,
        }
        for o in outcomes
    ]
    return pd.DataFrame(rows, columns=OUTCOME_COLUMNS)


def config_summary(config: ExperimentConfig) -> str:
    """One line: runs, network, optimizer, length (e.g. "3 runs · 3 hidden layers × 64 units · …")."""
    length = f"{config.steps:,} steps" if config.steps else f"{config.epochs} epochs"
    parts = [
        f"{len(config.runs)} runs: " + "; ".join(r.label or r.compact() for r in config.runs),
        f"{config.depth} hidden layers × {config.width} units",
        f"{config.optimizer.upper() if config.optimizer == 'sgd' else config.optimizer.capitalize()}, "
        f"lr {config.lr:g}, batch {config.batch_size}",
        length,
        config.dataset,
    ]
    return " · ".join(parts)

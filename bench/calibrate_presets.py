"""Re-measure the numbers behind the presets' thresholds (``core/presets.py``) over several seeds.

Prints, per preset (and variant), every check's measured value for each seed, the range, and how
many seeds pass. One torch thread; about 4 minutes for all presets and 5 seeds on one core.

    python bench/calibrate_presets.py                 # every preset, seeds 0-4
    python bench/calibrate_presets.py he2015_fig3 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from core.presets import all_presets, get_preset
from core.training import train


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.5g}"
    return str(value)


def calibrate(slug: str, variant: str | None, seeds: list[int]) -> None:
    preset = get_preset(slug)
    rows: dict[tuple[str, str, str], list[object]] = {}
    passes: dict[tuple[str, str, str], int] = {}
    seconds = []
    for seed in seeds:
        t0 = time.perf_counter()
        result = train(preset.config(variant, seed=seed))
        seconds.append(time.perf_counter() - t0)
        for outcome in preset.check(result, variant):
            key = (outcome.run or "", outcome.name, outcome.threshold)
            rows.setdefault(key, []).append(outcome.value)
            passes[key] = passes.get(key, 0) + int(outcome.passed)
    title = slug + (f" [{variant}]" if variant else "")
    print(f"\n== {title}: {len(seeds)} seeds, {min(seconds):.1f}-{max(seconds):.1f} s per training")
    print("run | check | threshold | " + " | ".join(f"seed {s}" for s in seeds) + " | min | max | passed")
    for key, values in rows.items():
        numbers = [v for v in values if isinstance(v, float)]
        low = _fmt(min(numbers)) if numbers else "-"
        high = _fmt(max(numbers)) if numbers else "-"
        cells = " | ".join(_fmt(v) for v in values)
        print(f"{key[0]} | {key[1]} | {key[2]} | {cells} | {low} | {high} | {passes[key]}/{len(seeds)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("slugs", nargs="*", help="presets to calibrate (default: all)")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds (default 0-4)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    for preset in all_presets():
        if args.slugs and preset.slug not in args.slugs:
            continue
        for variant in (None, *(v.slug for v in preset.variants)):
            calibrate(preset.slug, variant, seeds)


if __name__ == "__main__":
    main()

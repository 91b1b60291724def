"""How long the built-in datasets take to load. Prints figures; not a test.

    python bench/dataset_bench.py              # one thread, best of 3
    python bench/dataset_bench.py --threads 2 --repeats 5

Figures: digits (first load in the process, which imports scikit-learn and reads its files, then a
cached one), synthetic at MNIST size (60,000 + 10,000 samples of 784 dims), and idx on an
MNIST-sized folder of random pixels written to a temporary folder, plain and gzipped.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch

from plugins.datasets import load_digits, load_idx, load_synthetic
from plugins.idx_format import write_idx_images, write_idx_labels


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def write_mnist_sized(folder: Path, gz: bool) -> None:
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    for prefix, n in (("train", 60_000), ("t10k", 10_000)):
        write_idx_images(
            folder / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28), np.uint8), gz
        )
        write_idx_labels(folder / f"{prefix}-labels-idx1-ubyte{suffix}", rng.integers(0, 10, n, np.uint8), gz)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads: {args.threads}, best of {args.repeats}")

    print(f"digits, first load          {best_of(1, load_digits):7.3f} s")
    print(f"digits, cached              {best_of(args.repeats, load_digits):7.3f} s")
    secs = best_of(args.repeats, lambda: load_synthetic(n_train=60_000, n_val=10_000))
    print(f"synthetic 60k+10k x 784     {secs:7.3f} s   ({70_000 / secs:,.0f} samples/s)")
    for gz in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            write_mnist_sized(Path(tmp), gz)
            secs = best_of(args.repeats, lambda tmp=tmp: load_idx(path=tmp))
        print(f"idx 60k+10k, {'gzipped' if gz else 'plain  '}        {secs:7.3f} s")


if __name__ == "__main__":
    main()

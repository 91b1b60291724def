"""Built-in datasets: scikit-learn's 8x8 digits, a synthetic MNIST-shaped generator, and IDX folders.

Every loader returns a :class:`core.specs.DatasetBundle` whose inputs are standardized with the
*training* split's scalar mean and standard deviation (the same transform is applied to the
validation split, so no information leaks from it).
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core import DatasetBundle, DatasetError, DatasetSpec, Param, hookimpl, resolve_params
from plugins.idx_format import find_idx_file, idx_file_names, read_idx_images, read_idx_labels

# -- shared helpers ------------------------------------------------------------------------------


def _standardize(x_train: torch.Tensor, x_val: torch.Tensor, mean: float, std: float) -> None:
    """In place: (x - mean) / std on both splits, with the train split's statistics."""
    scale = 1.0 / (std if std > 0 else 1.0)
    for x in (x_train, x_val):
        x.sub_(mean).mul_(scale)


def _spec(
    name: str, display: str, description: str, load: Callable[..., DatasetBundle], params: tuple[Param, ...]
) -> DatasetSpec:
    owner = f"dataset {name}"

    @functools.wraps(load)
    def load_checked(**values: Any) -> DatasetBundle:
        # Direct callers get the same validation (and defaults) as the engine.
        return load(**resolve_params(params, values, owner))

    return DatasetSpec(name=name, load=load_checked, display_name=display, description=description, params=params)


# -- digits --------------------------------------------------------------------------------------

DIGITS_PARAMS = (
    Param("val_fraction", "float", 0.2, min=0.05, max=0.5, help="share of the 1,797 images held out for validation"),
    Param("split_seed", "int", 0, min=0, max=2**31 - 1, help="seed of the stratified train/validation split"),
)


DIGITS_SHAPE = (1797, 64)


def _bundled_digits_file() -> Path | None:
    """scikit-learn's ``digits.csv.gz``, found without importing scikit-learn (which takes ~2 s)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    return path if path.is_file() else None


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits (pixels 0..16 as float64, labels 0..9); read once per process."""
    path = _bundled_digits_file()
    table = np.loadtxt(path, delimiter=",") if path is not None else None
    if table is not None and table.shape == (DIGITS_SHAPE[0], DIGITS_SHAPE[1] + 1):
        data, target = table[:, :-1], table[:, -1].astype(np.int64)
    else:  # the file moved in some scikit-learn version: take the public (slower to import) route
        from sklearn.datasets import load_digits as sklearn_load_digits

        digits = sklearn_load_digits()
        data, target = digits.data.astype(np.float64), digits.target.astype(np.int64)
    data.flags.writeable = False
    target.flags.writeable = False
    return data, target


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled (train, val) index arrays; ``ceil(val_fraction * N)`` go to val, each class's share
    ``val_fraction * n_class`` rounded down or up (largest remainders round up, ties broken at random).
    """
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    exact = val_fraction * counts
    per_class = np.floor(exact).astype(np.int64)
    extra = math.ceil(val_fraction * len(labels)) - int(per_class.sum())  # < number of classes
    order = np.lexsort((rng.random(len(classes)), -(exact - per_class)))
    per_class[order[:extra]] += 1
    train, val = [], []
    for cls, n_val in zip(classes, per_class, strict=True):
        members = rng.permutation(np.flatnonzero(labels == cls))
        val.append(members[:n_val])
        train.append(members[n_val:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(val))


def load_digits(val_fraction: float = 0.2, split_seed: int = 0) -> DatasetBundle:
    """Stratified split of the 8x8 digits; pixels / 16, then standardized with train statistics."""
    data, target = _digits_arrays()
    idx_train, idx_val = stratified_split(target, val_fraction, split_seed)
    x_train, x_val = data[idx_train] / 16.0, data[idx_val] / 16.0
    mean, std = float(x_train.mean()), float(x_train.std())
    return DatasetBundle(
        x_train=torch.from_numpy(((x_train - mean) / std).astype(np.float32)),
        y_train=torch.from_numpy(target[idx_train]),
        x_val=torch.from_numpy(((x_val - mean) / std).astype(np.float32)),
        y_val=torch.from_numpy(target[idx_val]),
        class_names=tuple(str(d) for d in range(10)),
        image_shape=(8, 8),
    )


# -- synthetic -----------------------------------------------------------------------------------

SYNTHETIC_MAX_ELEMENTS = 250_000_000  # (n_train + n_val) * dims; 1 GB of float32
SYNTHETIC_PARAMS = (
    Param("n_train", "int", 10_000, min=100, max=200_000, help="training samples"),
    Param("n_val", "int", 2_000, min=10, max=50_000, help="validation samples"),
    Param("dims", "int", 784, min=4, max=4096, help="features; a perfect square gives square images (784 = 28x28)"),
    Param("classes", "int", 10, min=2, max=100, help="number of classes (balanced)"),
    Param("noise", "float", 0.5, min=0.0, max=10.0, help="pixel noise std relative to stroke intensity: difficulty"),
    Param("seed", "int", 0, min=0, max=2**31 - 1, help="seed of the prototypes and the samples"),
)
_STROKES = 3  # strokes per class prototype
_STROKE_POINTS = 16  # points rendered along each stroke
_MAX_SHIFT = 3  # pixels a stroke may move per sample
_TABLE_BUDGET = 16_000_000  # elements of the shifted-stroke table (64 MB)
_CHUNK = 8192  # samples generated at a time (bounds temporary memory)


def _grid(dims: int) -> tuple[tuple[int, ...], torch.Tensor]:
    """Image shape and pixel-centre coordinates in [0, 1]^d, shape (dims, d)."""
    side = math.isqrt(dims)
    if side * side == dims:
        u = (torch.arange(side, dtype=torch.float32) + 0.5) / side
        rows, cols = torch.meshgrid(u, u, indexing="ij")
        return (side, side), torch.stack([rows.reshape(-1), cols.reshape(-1)], dim=1)
    return (dims,), ((torch.arange(dims, dtype=torch.float32) + 0.5) / dims).unsqueeze(1)


def _stroke_table(coords: torch.Tensor, shape: tuple[int, ...], classes: int, gen: torch.Generator) -> torch.Tensor:
    """Rendered strokes for every class and every shift: (classes, strokes, shifts, dims), peak 1.

    Each stroke is a quadratic Bezier curve through three random control points in the central
    60% of the image, drawn as a soft line (the max of Gaussian dots along it), which looks like
    a pen stroke. The shifts are whole-pixel translations of up to ~10% of the image side (at
    most 3 pixels, fewer when the table would exceed ``_TABLE_BUDGET`` elements); samples pick
    one per stroke, so strokes also move relative to each other.
    """
    d, dims, side = coords.shape[1], coords.shape[0], shape[0]
    control = 0.2 + 0.6 * torch.rand(classes, _STROKES, 3, d, generator=gen)
    t = torch.linspace(0.0, 1.0, _STROKE_POINTS).view(1, 1, -1, 1)
    p0, p1, p2 = (control[:, :, i : i + 1, :] for i in range(3))
    points = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2  # (C, K, P, d)
    width = max(0.045, 0.6 / side)  # stroke half-width: ~1.3 px at 28x28, at least 0.6 px
    base = torch.zeros(classes, _STROKES, dims)
    for p in range(_STROKE_POINTS):
        dist2 = ((coords.view(1, 1, dims, d) - points[:, :, p : p + 1, :]) ** 2).sum(-1)  # (C, K, D)
        torch.maximum(base, torch.exp(dist2 / (-2 * width**2)), out=base)
    room = _TABLE_BUDGET / (classes * _STROKES * dims)  # shifts the budget allows
    reach = max(1, min(_MAX_SHIFT, round(0.1 * side), int((room ** (1 / d) - 1) // 2)))
    # Whole-pixel translation of the rendered strokes; strokes stay >= 20% of the side from the
    # border, so the zeros that move in replace values that are ~0 anyway.
    padded = torch.nn.functional.pad(base.view(classes, _STROKES, *shape), (reach, reach) * d)
    offsets = list(itertools.product(range(2 * reach + 1), repeat=d))
    table = torch.empty(classes, _STROKES, len(offsets), dims)
    for s, offset in enumerate(offsets):
        window = padded[(..., *(slice(o, o + n) for o, n in zip(offset, shape, strict=True)))]
        table[:, :, s] = window.reshape(classes, _STROKES, dims)
    return table


def _sample(table: torch.Tensor, labels: torch.Tensor, noise: float, gen: torch.Generator, out: torch.Tensor) -> None:
    """Fill ``out`` with class-conditional samples: shifted, re-weighted strokes plus pixel noise."""
    _, strokes, shifts, dims = table.shape
    flat = table.view(-1, dims)
    for start in range(0, labels.shape[0], _CHUNK):
        c = labels[start : start + _CHUNK]
        n = c.shape[0]
        shift = torch.randint(shifts, (n, strokes), generator=gen)  # each stroke moves on its own
        weight = 0.6 + 0.8 * torch.rand(n, strokes, generator=gen)  # each stroke's ink: 0.6..1.4
        block = out[start : start + n]
        torch.randn(n, dims, generator=gen, out=block)
        block.mul_(noise)
        for k in range(strokes):
            block.addcmul_(flat[(c * strokes + k) * shifts + shift[:, k]], weight[:, k : k + 1])


def _balanced_labels(n: int, classes: int, gen: torch.Generator) -> torch.Tensor:
    labels = torch.arange(n) % classes
    return labels[torch.randperm(n, generator=gen)]


def load_synthetic(
    n_train: int = 10_000, n_val: int = 2_000, dims: int = 784, classes: int = 10, noise: float = 0.5, seed: int = 0
) -> DatasetBundle:
    """Class-conditional stroke images plus noise; standardized with train statistics."""
    if (n_train + n_val) * dims > SYNTHETIC_MAX_ELEMENTS:
        need = (n_train + n_val) * dims * 4 / 1e9
        raise DatasetError(
            f"synthetic: (n_train + n_val) x dims = ({n_train} + {n_val}) x {dims} would need {need:.1f} GB "
            f"of float32; the limit is {SYNTHETIC_MAX_ELEMENTS * 4 / 1e9:.0f} GB: lower n_train or dims"
        )
    gen = torch.Generator().manual_seed(seed)
    image_shape, coords = _grid(dims)
    table = _stroke_table(coords, image_shape, classes, gen)
    y_train = _balanced_labels(n_train, classes, gen)
    y_val = _balanced_labels(n_val, classes, gen)
    x_train = torch.empty(n_train, dims)
    x_val = torch.empty(n_val, dims)
    _sample(table, y_train, noise, gen, x_train)
    _sample(table, y_val, noise, gen, x_val)
    std, mean = torch.std_mean(x_train, correction=0)  # float32 cascade sums: ~1e-7 relative error
    _standardize(x_train, x_val, float(mean), float(std))
    return DatasetBundle(
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        class_names=tuple(f"class {i}" for i in range(classes)),
        image_shape=image_shape,
    )


# -- IDX (MNIST / Fashion-MNIST / KMNIST) ----------------------------------------------------------

IDX_CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion_mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    "kmnist": ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
}
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "val_images": "t10k-images-idx3-ubyte",
    "val_labels": "t10k-labels-idx1-ubyte",
}
_TORCHVISION_FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "kmnist": "KMNIST"}
IDX_PARAMS = (
    Param("path", "path", "", help="folder holding the four IDX files (train-*, t10k-*; .gz or not)"),
    Param("flavor", "choice", "mnist", choices=tuple(IDX_CLASS_NAMES), help="which dataset: sets the class names"),
    Param("limit_train", "int", 0, min=0, max=10_000_000, help="use only the first N training images (0 = all)"),
)


def _expected_files_text() -> str:
    return (
        ", ".join(IDX_FILES.values())
        + " (each may also end in .gz, or use the dotted form such as train-images.idx3-ubyte)"
    )


def _idx_folder(path: str, flavor: str) -> Path:
    """The folder that holds the files: ``path`` itself, or torchvision's ``raw`` layout under it."""
    if not path.strip():
        raise DatasetError(
            f"idx: path is not set. Give the folder that holds the four IDX files: {_expected_files_text()}"
        )
    folder = Path(path).expanduser()
    if not folder.exists():
        raise DatasetError(f"idx: folder {str(folder)!r} does not exist; set path to the folder with the IDX files")
    if not folder.is_dir():
        raise DatasetError(
            f"idx: path {str(folder)!r} is a file, not a folder; set path to the folder that holds "
            f"the four IDX files: {_expected_files_text()}"
        )
    for candidate in (folder, folder / "raw", folder / _TORCHVISION_FOLDERS[flavor] / "raw"):
        if candidate.is_dir() and find_idx_file(candidate, IDX_FILES["train_images"]) is not None:
            return candidate
    return folder


def _check_labels(labels: np.ndarray, images: np.ndarray, label_file: Path, image_file: Path, classes: int) -> None:
    if labels.shape[0] != images.shape[0]:
        raise DatasetError(
            f"idx: {label_file} has {labels.shape[0]} labels but {image_file} has {images.shape[0]} images; "
            "the counts must match (files from different datasets or versions?)"
        )
    if images.shape[0] == 0:
        raise DatasetError(f"idx: {image_file} contains no images")
    top = int(labels.max())
    if top >= classes:
        where = int(np.argmax(labels >= classes))
        raise DatasetError(
            f"idx: {label_file} has label {top} (first out-of-range label at index {where}); "
            f"labels must be in 0..{classes - 1}"
        )


def _pixel_stats(images: np.ndarray) -> tuple[float, float]:
    """Exact mean and std of uint8 pixels / 255, from a 256-bin histogram (no float copy)."""
    counts = np.bincount(images.reshape(-1), minlength=256).astype(np.float64)
    values = np.arange(256, dtype=np.float64) / 255.0
    total = counts.sum()
    mean = float((counts * values).sum() / total)
    var = float((counts * (values - mean) ** 2).sum() / total)
    return mean, math.sqrt(var)


def load_idx(path: str = "", flavor: str = "mnist", limit_train: int = 0) -> DatasetBundle:
    """Train = ``train-*`` files, validation = ``t10k-*`` files; /255, then train-standardized."""
    folder = _idx_folder(path, flavor)
    files = {key: find_idx_file(folder, stem) for key, stem in IDX_FILES.items()}
    missing = [stem for key, stem in IDX_FILES.items() if files[key] is None]
    if missing:
        present = sorted(p.name for p in folder.iterdir())
        listing = ", ".join(present[:12]) + (f" and {len(present) - 12} more" if len(present) > 12 else "")
        raise DatasetError(
            f"idx: folder {str(folder)!r} lacks {', '.join(missing)} (looked for each also with .gz and in "
            f"the dotted form, e.g. {idx_file_names(missing[0])[-1]}). It contains: {listing or 'nothing'}"
        )
    classes = len(IDX_CLASS_NAMES[flavor])
    splits = {}
    for split in ("train", "val"):
        image_file, label_file = files[f"{split}_images"], files[f"{split}_labels"]
        images, labels = read_idx_images(image_file), read_idx_labels(label_file)
        _check_labels(labels, images, label_file, image_file, classes)
        splits[split] = (images, labels, image_file)
    (train_images, train_labels, train_file), (val_images, val_labels, val_file) = splits["train"], splits["val"]
    if train_images.shape[1:] != val_images.shape[1:]:
        raise DatasetError(
            f"idx: {train_file} has {train_images.shape[1]}x{train_images.shape[2]} images but {val_file} has "
            f"{val_images.shape[1]}x{val_images.shape[2]}; both splits must have the same image size"
        )
    if limit_train:
        train_images, train_labels = train_images[:limit_train], train_labels[:limit_train]
    mean, std = _pixel_stats(train_images)
    x_train, x_val = (
        torch.from_numpy(a.reshape(a.shape[0], -1).astype(np.float32)) for a in (train_images, val_images)
    )
    for x in (x_train, x_val):
        x.div_(255.0)
    _standardize(x_train, x_val, mean, std)
    return DatasetBundle(
        x_train=x_train,
        y_train=torch.from_numpy(train_labels.astype(np.int64)),
        x_val=x_val,
        y_val=torch.from_numpy(val_labels.astype(np.int64)),
        class_names=IDX_CLASS_NAMES[flavor],
        image_shape=tuple(int(s) for s in train_images.shape[1:]),
    )


# -- registration --------------------------------------------------------------------------------

BUILTIN_DATASETS: tuple[DatasetSpec, ...] = (
    _spec(
        "digits",
        "Digits (8x8, scikit-learn)",
        "scikit-learn's bundled 1,797 handwritten digits, 8x8 pixels, 10 classes; offline and fast. "
        "A stratified train/validation split; pixels scaled to [0, 1], then standardized with the "
        "training split's mean and standard deviation.",
        load_digits,
        DIGITS_PARAMS,
    ),
    _spec(
        "synthetic",
        "Synthetic strokes (MNIST-shaped)",
        "Generated class-conditional images for scale: each class is a few random pen strokes; "
        "each sample shifts them by a pixel or two, varies their ink and adds pixel noise. Size, "
        "dimensions, classes, difficulty (noise) and seed are parameters; balanced classes.",
        load_synthetic,
        SYNTHETIC_PARAMS,
    ),
    _spec(
        "idx",
        "MNIST / Fashion-MNIST / KMNIST (IDX files)",
        "The original IDX files (gzipped or not) from a local folder: train-images-idx3-ubyte, "
        "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte. Training uses the "
        "train files, validation the t10k files. Nothing is downloaded.",
        load_idx,
        IDX_PARAMS,
    ),
)


@hookimpl
def register_datasets(register: Callable[..., None]) -> None:
    for spec in BUILTIN_DATASETS:
        register(spec)

"""The built-in datasets: digits, synthetic and idx, loaded through the registry like any plugin's."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits as sklearn_digits

from core import DatasetBundle, DatasetError, ParamError, get_registry
from plugins import datasets
from plugins.datasets import stratified_split
from plugins.idx_format import write_idx_images, write_idx_labels

# Standardized values are computed in float64 and stored as float32: each carries a relative
# rounding error below 2**-24 ~ 6e-8, and |x| stays below ~10 here, so a mean or std computed
# from them is off by at most ~6e-7. 1e-5 leaves a wide margin. The synthetic set is standardized
# with float32 cascade sums (relative error ~1e-6 on 10^6 values), hence 1e-4 there.
STANDARDIZED_TOL = 1e-5
STANDARDIZED_TOL_FLOAT32_STATS = 1e-4


def load(name: str, **params: object) -> DatasetBundle:
    """Load through the registry, as the engine does, and check the bundle's consistency."""
    bundle = get_registry().dataset(name).load(**params)
    bundle.check(name)
    return bundle


def _mean_std(x: torch.Tensor) -> tuple[float, float]:
    x64 = x.double()
    return float(x64.mean()), float(x64.std(correction=0))


# -- registration -------------------------------------------------------------------------------------


def test_all_three_datasets_are_registered_by_the_builtin_plugin() -> None:
    registry = get_registry()
    for name in ("digits", "synthetic", "idx"):
        spec = registry.dataset(name)
        assert spec.provenance is not None and spec.provenance.plugin == "plugins.datasets"
        assert spec.display_name and spec.description
    assert not [e for e in registry.errors if e.plugin == "plugins.datasets"]


def test_declared_parameters_are_what_the_dashboard_builds_widgets_from() -> None:
    registry = get_registry()
    declared = {
        name: {p.name: (p.type, p.default, p.min, p.max, p.choices) for p in registry.dataset(name).params}
        for name in ("digits", "synthetic", "idx")
    }
    assert declared["digits"] == {
        "val_fraction": ("float", 0.2, 0.05, 0.5, ()),
        "split_seed": ("int", 0, 0, 2**31 - 1, ()),
    }
    assert declared["synthetic"] == {
        "n_train": ("int", 10_000, 100, 200_000, ()),
        "n_val": ("int", 2_000, 10, 50_000, ()),
        "dims": ("int", 784, 4, 4096, ()),
        "classes": ("int", 10, 2, 100, ()),
        "noise": ("float", 0.5, 0.0, 10.0, ()),
        "seed": ("int", 0, 0, 2**31 - 1, ()),
    }
    assert declared["idx"] == {
        "path": ("path", "", None, None, ()),
        "flavor": ("choice", "mnist", None, None, ("mnist", "fashion_mnist", "kmnist")),
        "limit_train": ("int", 0, 0, 10_000_000, ()),
    }


def test_load_validates_parameters_itself() -> None:
    with pytest.raises(ParamError, match=r"val_fraction.*\[0\.05, 0\.5\]"):
        load("digits", val_fraction=0.9)
    with pytest.raises(ParamError, match="unknown parameter"):
        load("synthetic", sample_count=10)
    with pytest.raises(ParamError, match="flavor"):
        load("idx", path="/tmp", flavor="cifar")


# -- digits -------------------------------------------------------------------------------------------


def test_digits_sizes_shapes_and_names() -> None:
    b = load("digits")
    assert b.x_train.shape[0] + b.x_val.shape[0] == 1797
    # The validation split gets ceil(0.2 * 1797) = ceil(359.4) = 360 images.
    assert b.x_val.shape == (360, 64) and b.x_train.shape == (1437, 64)
    assert b.image_shape == (8, 8) and b.class_names == tuple("0123456789")


@pytest.mark.parametrize("val_fraction", [0.2, 0.35])
def test_digits_split_is_stratified(val_fraction: float) -> None:
    per_class = np.bincount(sklearn_digits().target, minlength=10)
    b = load("digits", val_fraction=val_fraction, split_seed=3)
    val_counts = np.bincount(b.y_val.numpy(), minlength=10)
    train_counts = np.bincount(b.y_train.numpy(), minlength=10)
    np.testing.assert_array_equal(val_counts + train_counts, per_class)
    # Stratification rounds each class's share to a neighbouring integer.
    assert np.all(np.abs(val_counts - val_fraction * per_class) <= 1), val_counts


def test_stratified_split_on_uneven_classes() -> None:
    labels = np.repeat(np.arange(4), [7, 13, 2, 30])  # 52 samples
    train, val = stratified_split(labels, 0.25, seed=4)
    assert len(val) == 13  # ceil(0.25 * 52)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(52))  # a partition
    val_counts = np.bincount(labels[val], minlength=4)
    expected = 0.25 * np.array([7, 13, 2, 30])  # 1.75, 3.25, 0.5, 7.5
    assert np.all((val_counts == np.floor(expected)) | (val_counts == np.ceil(expected))), val_counts
    again = stratified_split(labels, 0.25, seed=4)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], val)


def test_digits_without_the_bundled_csv_fall_back_to_sklearn(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = load("digits", split_seed=2)
    monkeypatch.setattr(datasets, "_bundled_digits_file", lambda: None)
    datasets._digits_arrays.cache_clear()
    try:
        slow = load("digits", split_seed=2)
    finally:
        datasets._digits_arrays.cache_clear()
    assert torch.equal(fast.x_train, slow.x_train) and torch.equal(fast.y_val, slow.y_val)


def test_digits_train_split_is_standardized() -> None:
    mean, std = _mean_std(load("digits").x_train)
    assert abs(mean) < STANDARDIZED_TOL and abs(std - 1) < STANDARDIZED_TOL


def test_digits_are_the_sklearn_images_under_one_affine_map_fitted_on_train() -> None:
    """Recover raw pixels (integers 0..16) from the bundle and check the map against train statistics."""
    b = load("digits", split_seed=5)
    levels = torch.unique(b.x_train.double())  # the 17 pixel values 0..16, standardized
    assert len(levels) == 17
    zero, step = float(levels[0]), float((levels[-1] - levels[0]) / 16)

    def raw(x: torch.Tensor) -> np.ndarray:
        pixels = (x.double() - zero) / step
        # The val split must sit on the train split's grid: a different mean/std would break this.
        assert torch.allclose(pixels, pixels.round(), atol=1e-4)
        return pixels.round().numpy().astype(np.int64)

    raw_train, raw_val = raw(b.x_train), raw(b.x_val)
    # The map is (p/16 - m) / s with m and s the mean and std of the *train* pixels / 16.
    m, s = float((raw_train / 16).mean()), float((raw_train / 16).std())
    assert zero == pytest.approx(-m / s, rel=1e-5)
    assert step == pytest.approx(1 / (16 * s), rel=1e-5)
    # Together the splits are exactly scikit-learn's images, each with its own label.
    digits = sklearn_digits()

    def rows(pixels: np.ndarray, labels: np.ndarray) -> Counter:
        return Counter((int(y), p.tobytes()) for p, y in zip(pixels.astype(np.int64), labels, strict=True))

    split_rows = rows(raw_train, b.y_train.numpy()) + rows(raw_val, b.y_val.numpy())
    assert split_rows == rows(digits.data, digits.target)


def test_digits_split_is_deterministic_per_seed() -> None:
    a, b, c = load("digits", split_seed=1), load("digits", split_seed=1), load("digits", split_seed=2)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_val, b.y_val)
    assert not torch.equal(a.x_val, c.x_val)


def test_digits_returns_fresh_tensors() -> None:
    first = load("digits")
    first.x_train.fill_(123.0)
    first.y_train.fill_(0)
    second = load("digits")
    assert float(second.x_train.abs().max()) < 100
    assert len(torch.unique(second.y_train)) == 10


# -- synthetic ----------------------------------------------------------------------------------------

SMALL = {"n_train": 2000, "n_val": 1000}


def _nearest_class_mean_accuracy(b: DatasetBundle) -> float:
    means = torch.stack([b.x_train[b.y_train == c].mean(0) for c in range(b.num_classes)])
    predicted = torch.cdist(b.x_val, means).argmin(1)
    return float((predicted == b.y_val).float().mean())


def test_synthetic_defaults_are_mnist_shaped() -> None:
    b = load("synthetic")
    assert b.x_train.shape == (10_000, 784) and b.x_val.shape == (2_000, 784)
    assert b.image_shape == (28, 28)
    assert b.class_names == tuple(f"class {i}" for i in range(10))


@pytest.mark.parametrize(("dims", "shape"), [(64, (8, 8)), (50, (50,)), (4, (2, 2)), (5, (5,))])
def test_synthetic_image_shape_follows_dims(dims: int, shape: tuple[int, ...]) -> None:
    b = load("synthetic", n_train=300, n_val=30, dims=dims, classes=3)
    assert b.image_shape == shape and b.x_train.shape == (300, dims)
    assert b.class_names == ("class 0", "class 1", "class 2")


def test_synthetic_classes_are_balanced() -> None:
    b = load("synthetic", n_train=1003, n_val=29, classes=7)
    for y, n in ((b.y_train, 1003), (b.y_val, 29)):
        counts = np.bincount(y.numpy(), minlength=7)
        assert counts.sum() == n and set(counts) <= {n // 7, n // 7 + 1}


def test_synthetic_is_deterministic_by_seed_and_ignores_the_global_rng() -> None:
    torch.manual_seed(1)
    a = load("synthetic", **SMALL, seed=7)
    torch.manual_seed(2)
    b = load("synthetic", **SMALL, seed=7)
    c = load("synthetic", **SMALL, seed=8)
    for name in ("x_train", "y_train", "x_val", "y_val"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert not torch.allclose(a.x_train, c.x_train)
    assert not torch.equal(a.y_train, c.y_train)


def test_synthetic_is_standardized_with_train_statistics() -> None:
    b = load("synthetic", **SMALL)
    mean, std = _mean_std(b.x_train)
    assert abs(mean) < STANDARDIZED_TOL_FLOAT32_STATS and abs(std - 1) < STANDARDIZED_TOL_FLOAT32_STATS
    # Without noise every raw value is >= 0 and both splits contain exact zeros (pixels where the
    # shifted strokes leave blank border). One affine map sends raw 0 to the same value in both
    # splits; per-split statistics would not.
    clean = load("synthetic", **SMALL, noise=0.0)
    assert float(clean.x_train.min()) == float(clean.x_val.min())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_synthetic_class_means_classify_far_above_chance(seed: int) -> None:
    # Chance is 1/10; on 1000 validation samples a chance-level classifier's accuracy has a
    # standard error of sqrt(0.1 * 0.9 / 1000) ~ 0.0095, so 0.4 is 30 standard errors above it.
    assert _nearest_class_mean_accuracy(load("synthetic", **SMALL, seed=seed)) > 0.4


def test_synthetic_noise_controls_difficulty() -> None:
    # Each accuracy on 1000 samples has a standard error of at most 0.016 (p = 0.5); a gap of 0.3
    # is over 13 standard errors of the difference, so it is the noise, not the sampling.
    clean = _nearest_class_mean_accuracy(load("synthetic", **SMALL, noise=0.0))
    noisy = _nearest_class_mean_accuracy(load("synthetic", **SMALL, noise=4.0))
    assert clean > noisy + 0.3


def test_synthetic_refuses_sizes_beyond_its_memory_limit() -> None:
    with pytest.raises(DatasetError, match=r"synthetic: .*200000 \+ 50000\) x 4096.*lower n_train or dims"):
        load("synthetic", n_train=200_000, n_val=50_000, dims=4096)


# -- idx ----------------------------------------------------------------------------------------------


class IdxFiles:
    """A tiny MNIST-like folder: 40 train and 15 t10k images of 6 x 5 pixels."""

    def __init__(self, folder: Path, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.folder = folder
        self.train_images = rng.integers(0, 256, size=(40, 6, 5), dtype=np.uint8)
        self.train_labels = np.arange(40, dtype=np.uint8) % 10
        self.val_images = rng.integers(0, 200, size=(15, 6, 5), dtype=np.uint8)
        self.val_labels = rng.integers(0, 10, size=15, dtype=np.uint8)

    def write(self, gz: bool = False, dotted: bool = False) -> IdxFiles:
        self.folder.mkdir(parents=True, exist_ok=True)
        for stem, array in self.arrays().items():
            name = stem.replace("-idx", ".idx") if dotted else stem
            writer = write_idx_images if "images" in stem else write_idx_labels
            writer(self.folder / (name + (".gz" if gz else "")), array, gzip=gz)
        return self

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "train-images-idx3-ubyte": self.train_images,
            "train-labels-idx1-ubyte": self.train_labels,
            "t10k-images-idx3-ubyte": self.val_images,
            "t10k-labels-idx1-ubyte": self.val_labels,
        }

    def path(self, stem: str) -> Path:
        return self.folder / stem


@pytest.fixture
def idx(tmp_path: Path) -> IdxFiles:
    return IdxFiles(tmp_path / "mnist").write()


def _expected(pixels: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Independent oracle: /255, then the train split's mean and std (float64)."""
    m, s = (train / 255.0).mean(), (train / 255.0).std()
    return ((pixels.reshape(len(pixels), -1) / 255.0 - m) / s).astype(np.float32)


@pytest.mark.parametrize(("gz", "dotted"), [(False, False), (True, False), (False, True), (True, True)])
def test_idx_loads_plain_gzipped_and_dotted_files(tmp_path: Path, gz: bool, dotted: bool) -> None:
    files = IdxFiles(tmp_path / "data").write(gz=gz, dotted=dotted)
    b = load("idx", path=str(files.folder))
    assert b.image_shape == (6, 5) and b.x_train.shape == (40, 30) and b.x_val.shape == (15, 30)
    assert b.class_names == tuple("0123456789")
    np.testing.assert_array_equal(b.y_train.numpy(), files.train_labels)
    np.testing.assert_array_equal(b.y_val.numpy(), files.val_labels)
    np.testing.assert_allclose(b.x_train.numpy(), _expected(files.train_images, files.train_images), atol=1e-5)
    # The validation split uses the training split's statistics (its pixels are darker: 0..199).
    np.testing.assert_allclose(b.x_val.numpy(), _expected(files.val_images, files.train_images), atol=1e-5)


@pytest.mark.parametrize(
    ("flavor", "names"),
    [
        ("mnist", tuple("0123456789")),
        (
            "fashion_mnist",
            ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        ),
        ("kmnist", ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")),
    ],
)
def test_idx_flavor_sets_class_names(idx: IdxFiles, flavor: str, names: tuple[str, ...]) -> None:
    assert load("idx", path=str(idx.folder), flavor=flavor).class_names == names


def test_idx_limit_train_keeps_the_first_samples_and_fits_statistics_on_them(idx: IdxFiles) -> None:
    b = load("idx", path=str(idx.folder), limit_train=12)
    assert b.x_train.shape == (12, 30) and b.x_val.shape == (15, 30)
    np.testing.assert_array_equal(b.y_train.numpy(), idx.train_labels[:12])
    first = idx.train_images[:12]
    np.testing.assert_allclose(b.x_train.numpy(), _expected(first, first), atol=1e-5)
    np.testing.assert_allclose(b.x_val.numpy(), _expected(idx.val_images, first), atol=1e-5)
    assert load("idx", path=str(idx.folder), limit_train=1000).x_train.shape == (40, 30)  # at most all


def test_idx_finds_torchvision_raw_layout(tmp_path: Path) -> None:
    IdxFiles(tmp_path / "FashionMNIST" / "raw").write(gz=True)
    b = load("idx", path=str(tmp_path), flavor="fashion_mnist")
    assert b.x_train.shape == (40, 30)


def test_idx_expands_home(idx: IdxFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(idx.folder.parent))
    assert load("idx", path="~/mnist").x_train.shape == (40, 30)


def _idx_error(path: Path | str, **params: object) -> str:
    with pytest.raises(DatasetError) as err:
        load("idx", path=str(path), **params)
    return str(err.value)


def test_idx_path_not_set_lists_the_expected_files() -> None:
    with pytest.raises(DatasetError) as err:
        load("idx")
    msg = str(err.value)
    assert "path is not set" in msg
    for stem in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        assert stem in msg
    assert ".gz" in msg and "train-images.idx3-ubyte" in msg  # gzipped and dotted variants are accepted too


def test_idx_missing_folder(tmp_path: Path) -> None:
    msg = _idx_error(tmp_path / "absent")
    assert str(tmp_path / "absent") in msg and "does not exist" in msg


def test_idx_path_is_a_file(idx: IdxFiles) -> None:
    msg = _idx_error(idx.path("train-images-idx3-ubyte"))
    assert "train-images-idx3-ubyte" in msg and "is a file, not a folder" in msg


def test_idx_missing_file_names_it_and_lists_the_folder(idx: IdxFiles) -> None:
    idx.path("t10k-labels-idx1-ubyte").unlink()
    msg = _idx_error(idx.folder)
    assert str(idx.folder) in msg
    assert "lacks t10k-labels-idx1-ubyte (" in msg  # only the missing file is named as missing
    assert "t10k-labels.idx1-ubyte.gz" in msg  # and the variants looked for are shown
    assert "It contains: t10k-images-idx3-ubyte, train-images-idx3-ubyte, train-labels-idx1-ubyte" in msg


def test_idx_empty_folder(tmp_path: Path) -> None:
    msg = _idx_error(tmp_path)
    assert "train-images-idx3-ubyte" in msg and "t10k-labels-idx1-ubyte" in msg and "contains: nothing" in msg


def test_idx_wrong_magic(idx: IdxFiles) -> None:
    write_idx_labels(idx.path("t10k-images-idx3-ubyte"), idx.val_labels)  # labels where images belong
    msg = _idx_error(idx.folder)
    assert str(idx.path("t10k-images-idx3-ubyte")) in msg and "wrong magic number 0x00000801" in msg


def test_idx_truncated_images(idx: IdxFiles) -> None:
    path = idx.path("train-images-idx3-ubyte")
    path.write_bytes(path.read_bytes()[:-7])  # 40 x 6 x 5 = 1200 pixel bytes promised, 1193 left
    msg = _idx_error(idx.folder)
    assert str(path) in msg and "truncated" in msg and "1200 bytes" in msg and "only 1193 bytes" in msg


def test_idx_truncated_labels(idx: IdxFiles) -> None:
    path = idx.path("t10k-labels-idx1-ubyte")
    path.write_bytes(path.read_bytes()[:-5])  # 15 label bytes promised, 10 left
    msg = _idx_error(idx.folder)
    assert str(path) in msg and "truncated" in msg and "15 bytes" in msg and "only 10 bytes" in msg


def test_idx_label_count_must_match_image_count(idx: IdxFiles) -> None:
    write_idx_labels(idx.path("train-labels-idx1-ubyte"), idx.train_labels[:39])
    msg = _idx_error(idx.folder)
    assert str(idx.path("train-labels-idx1-ubyte")) in msg and str(idx.path("train-images-idx3-ubyte")) in msg
    assert "39 labels" in msg and "40 images" in msg


def test_idx_corrupt_gzip(tmp_path: Path) -> None:
    files = IdxFiles(tmp_path / "gz").write(gz=True)
    path = files.path("train-labels-idx1-ubyte.gz")
    path.write_bytes(path.read_bytes()[:20])
    msg = _idx_error(files.folder)
    assert str(path) in msg and "corrupt gzip" in msg


def test_idx_label_out_of_range(idx: IdxFiles) -> None:
    labels = idx.val_labels.copy()
    labels[6] = 12
    write_idx_labels(idx.path("t10k-labels-idx1-ubyte"), labels)
    msg = _idx_error(idx.folder)
    assert str(idx.path("t10k-labels-idx1-ubyte")) in msg
    assert "label 12" in msg and "index 6" in msg and "0..9" in msg


def test_idx_image_size_must_match_between_splits(idx: IdxFiles) -> None:
    write_idx_images(idx.path("t10k-images-idx3-ubyte"), np.zeros((15, 28, 28), dtype=np.uint8))
    msg = _idx_error(idx.folder)
    assert "6x5" in msg and "28x28" in msg and "t10k-images-idx3-ubyte" in msg


def test_idx_empty_split(idx: IdxFiles) -> None:
    write_idx_images(idx.path("t10k-images-idx3-ubyte"), np.zeros((0, 6, 5), dtype=np.uint8))
    write_idx_labels(idx.path("t10k-labels-idx1-ubyte"), np.zeros(0, dtype=np.uint8))
    msg = _idx_error(idx.folder)
    assert str(idx.path("t10k-images-idx3-ubyte")) in msg and "no images" in msg

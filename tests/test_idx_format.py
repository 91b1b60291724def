"""IDX reading and writing: round trips, gzip detection, file-name variants, and every corruption."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from core.errors import DatasetError
from plugins.idx_format import (
    find_idx_file,
    idx_file_names,
    read_idx_images,
    read_idx_labels,
    write_idx_images,
    write_idx_labels,
)


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(7, 5, 4), dtype=np.uint8)


@pytest.fixture
def labels() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 10, size=7, dtype=np.uint8)


def _images_header(n: int, rows: int, cols: int) -> bytes:
    return struct.pack(">4I", 0x803, n, rows, cols)


# -- round trips -----------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_images_round_trip(tmp_path: Path, images: np.ndarray, compress: bool) -> None:
    path = write_idx_images(tmp_path / "imgs", images, gzip=compress)
    raw = path.read_bytes()
    if compress:
        assert raw[:2] == b"\x1f\x8b"
    else:  # the IDX layout itself, written out by hand: magic, N, rows, cols, then the pixels
        assert raw == _images_header(7, 5, 4) + images.tobytes()
    back = read_idx_images(path)
    assert back.dtype == np.uint8 and back.shape == (7, 5, 4)
    np.testing.assert_array_equal(back, images)


@pytest.mark.parametrize("compress", [False, True])
def test_labels_round_trip(tmp_path: Path, labels: np.ndarray, compress: bool) -> None:
    path = write_idx_labels(tmp_path / "labels", labels, gzip=compress)
    if not compress:
        assert path.read_bytes() == struct.pack(">2I", 0x801, 7) + labels.tobytes()
    back = read_idx_labels(path)
    assert back.dtype == np.uint8 and back.shape == (7,)
    np.testing.assert_array_equal(back, labels)


def test_gzip_is_detected_by_content_not_name(tmp_path: Path, images: np.ndarray) -> None:
    zipped_without_suffix = write_idx_images(tmp_path / "train-images-idx3-ubyte", images, gzip=True)
    plain_with_gz_suffix = write_idx_images(tmp_path / "t10k-images-idx3-ubyte.gz", images, gzip=False)
    np.testing.assert_array_equal(read_idx_images(zipped_without_suffix), images)
    np.testing.assert_array_equal(read_idx_images(plain_with_gz_suffix), images)


def test_writers_reject_wrong_shapes_and_values(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="3 dimension"):
        write_idx_images(tmp_path / "x", np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"0\.\.255"):
        write_idx_labels(tmp_path / "y", np.array([1, 300]))
    with pytest.raises(ValueError, match=r"0\.\.255"):
        write_idx_images(tmp_path / "x", np.full((1, 2, 2), 0.5))
    # Integer arrays within range are accepted and stored as bytes.
    write_idx_labels(tmp_path / "y", np.array([0, 9, 255], dtype=np.int64))
    np.testing.assert_array_equal(read_idx_labels(tmp_path / "y"), [0, 9, 255])


# -- finding files ---------------------------------------------------------------------------------


def test_accepted_names_cover_gzip_and_dotted_variants() -> None:
    assert idx_file_names("train-images-idx3-ubyte") == (
        "train-images-idx3-ubyte",
        "train-images-idx3-ubyte.gz",
        "train-images.idx3-ubyte",
        "train-images.idx3-ubyte.gz",
    )


@pytest.mark.parametrize(
    "name",
    ["t10k-labels-idx1-ubyte", "t10k-labels-idx1-ubyte.gz", "t10k-labels.idx1-ubyte", "t10k-labels.idx1-ubyte.gz"],
)
def test_find_idx_file_finds_each_variant(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"")
    assert find_idx_file(tmp_path, "t10k-labels-idx1-ubyte") == tmp_path / name


def test_find_idx_file_prefers_the_plain_name_and_ignores_folders(tmp_path: Path) -> None:
    assert find_idx_file(tmp_path, "train-images-idx3-ubyte") is None
    (tmp_path / "train-images-idx3-ubyte").mkdir()  # a folder of that name is not the file
    assert find_idx_file(tmp_path, "train-images-idx3-ubyte") is None
    (tmp_path / "train-images.idx3-ubyte.gz").write_bytes(b"")
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"")
    assert find_idx_file(tmp_path, "train-images-idx3-ubyte") == tmp_path / "train-images-idx3-ubyte.gz"


# -- corrupt files: every message names the file and the problem -------------------------------------


def _message(excinfo: pytest.ExceptionInfo[DatasetError]) -> str:
    return str(excinfo.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as err:
        read_idx_images(tmp_path / "nope")
    assert str(tmp_path / "nope") in _message(err) and "not found" in _message(err)


def test_labels_file_read_as_images_names_the_swap(tmp_path: Path, labels: np.ndarray) -> None:
    path = write_idx_labels(tmp_path / "train-images-idx3-ubyte", labels)
    with pytest.raises(DatasetError) as err:
        read_idx_images(path)
    msg = _message(err)
    assert str(path) in msg
    assert "wrong magic number 0x00000801" in msg and "expected 0x00000803" in msg
    assert "labels file" in msg


def test_images_file_read_as_labels(tmp_path: Path, images: np.ndarray) -> None:
    path = write_idx_images(tmp_path / "lbl", images, gzip=True)
    with pytest.raises(DatasetError) as err:
        read_idx_labels(path)
    msg = _message(err)
    assert str(path) in msg and "0x00000803" in msg and "expected 0x00000801" in msg and "images file" in msg


def test_text_file_is_not_idx(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"<html><body>404 Not Found</body></html>")
    with pytest.raises(DatasetError) as err:
        read_idx_images(path)
    msg = _message(err)
    assert str(path) in msg and "wrong magic number" in msg and "not an IDX file" in msg and "<html>" in msg


def test_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "imgs"
    path.write_bytes(_images_header(1, 2, 2)[:10])
    with pytest.raises(DatasetError) as err:
        read_idx_images(path)
    msg = _message(err)
    assert str(path) in msg and "truncated header" in msg and "10 bytes" in msg and "16-byte header" in msg


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_images_say_expected_and_actual_bytes(tmp_path: Path, images: np.ndarray, compress: bool) -> None:
    # 7 images of 5 x 4 = 140 pixel bytes promised; cut the file 25 bytes short of that.
    data = _images_header(7, 5, 4) + images.tobytes()[:115]
    path = tmp_path / "imgs"
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(DatasetError) as err:
        read_idx_images(path)
    msg = _message(err)
    assert str(path) in msg and "truncated" in msg
    assert "140 bytes" in msg and "only 115 bytes" in msg and "25 missing" in msg


def test_truncated_labels(tmp_path: Path) -> None:
    path = tmp_path / "lbl"
    path.write_bytes(struct.pack(">2I", 0x801, 10) + bytes(4))
    with pytest.raises(DatasetError) as err:
        read_idx_labels(path)
    msg = _message(err)
    assert str(path) in msg and "truncated" in msg and "10 bytes" in msg and "only 4 bytes" in msg


def test_extra_bytes_after_the_data(tmp_path: Path) -> None:
    path = tmp_path / "lbl"
    path.write_bytes(struct.pack(">2I", 0x801, 3) + bytes(5))
    with pytest.raises(DatasetError) as err:
        read_idx_labels(path)
    assert str(path) in _message(err) and "2 unexpected extra bytes" in _message(err)


def test_zero_sized_images_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "imgs"
    path.write_bytes(_images_header(3, 0, 28))
    with pytest.raises(DatasetError) as err:
        read_idx_images(path)
    assert str(path) in _message(err) and "0 x 28" in _message(err)


def test_cut_gzip_stream(tmp_path: Path, images: np.ndarray) -> None:
    whole = gzip.compress(_images_header(7, 5, 4) + images.tobytes())
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DatasetError) as err:
        read_idx_images(path)
    msg = _message(err)
    assert str(path) in msg and "corrupt gzip" in msg


def test_garbled_gzip_stream(tmp_path: Path) -> None:
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(b"\x1f\x8b" + bytes(range(256)) * 4)  # gzip magic, then garbage
    with pytest.raises(DatasetError) as err:
        read_idx_labels(path)
    msg = _message(err)
    assert str(path) in msg and "corrupt gzip" in msg and "gunzip -t" in msg


def test_garbled_deflate_data_after_a_valid_gzip_header(tmp_path: Path, labels: np.ndarray) -> None:
    good = bytearray(gzip.compress(struct.pack(">2I", 0x801, 7) + labels.tobytes() * 50))
    for i in range(10, len(good) - 8):  # keep the 10-byte header, scramble the deflate stream
        good[i] ^= 0xA5
    path = tmp_path / "lbl.gz"
    path.write_bytes(bytes(good))
    with pytest.raises(DatasetError) as err:
        read_idx_labels(path)
    assert str(path) in _message(err) and "corrupt gzip" in _message(err)

"""Read and write the IDX files MNIST, Fashion-MNIST and KMNIST ship in (plain or gzipped).

An IDX file is a big-endian header followed by raw bytes. The header starts with a 4-byte
magic number ``0x0000TTNN`` (``TT`` = element type, ``08`` for unsigned bytes; ``NN`` = number of
dimensions), then one 4-byte size per dimension:

- images: magic ``0x00000803``, then N, rows, cols; then N*rows*cols pixel bytes;
- labels: magic ``0x00000801``, then N; then N label bytes.

Every problem raises :class:`core.errors.DatasetError` naming the file, what was found and what
was expected. Gzip is recognised by its magic bytes (``1f 8b``), not by the file name.
"""

from __future__ import annotations

import gzip as _gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from core.errors import DatasetError

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
GZIP_MAGIC = b"\x1f\x8b"
_KNOWN_MAGICS = {IMAGES_MAGIC: "an IDX images file", LABELS_MAGIC: "an IDX labels file"}


def read_idx_bytes(path: str | Path) -> bytes:
    """The file's content, decompressed when it starts with the gzip magic bytes."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return _gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(
            f"{path}: corrupt gzip file ({exc}); it starts like gzip (bytes 1f 8b) but does not decompress. "
            "Download it again, or check it with `gunzip -t`."
        ) from None


def _header(data: bytes, path: Path, magic: int, ndim: int, what: str) -> tuple[int, ...]:
    """Check the magic number and return the dimension sizes of an IDX header."""
    header_len = 4 * (1 + ndim)
    short = DatasetError(
        f"{path}: truncated header: {len(data)} bytes, but an IDX {what} file starts with a "
        f"{header_len}-byte header (magic number and {ndim} size(s))"
    )
    if len(data) < 4:
        raise short
    (found,) = struct.unpack(">I", data[:4])
    if found != magic:
        hint = ""
        if found in _KNOWN_MAGICS:
            hint = f"; it looks like {_KNOWN_MAGICS[found]}: are the file names swapped?"
        elif data[:4].isascii() and data[:4].decode("ascii").isprintable():
            hint = f"; it begins with the text {data[:16]!r}, so it is not an IDX file (a failed download?)"
        raise DatasetError(
            f"{path}: wrong magic number 0x{found:08x}, expected 0x{magic:08x} (IDX {what}: unsigned bytes, "
            f"{ndim} dimension(s)){hint}"
        )
    if len(data) < header_len:
        raise short
    return struct.unpack(f">{ndim}I", data[4:header_len])


def _payload(data: bytes, path: Path, header_len: int, expected: int, layout: str) -> np.ndarray:
    """The bytes after the header as uint8, checked against the length the header promises."""
    actual = len(data) - header_len
    if actual < expected:
        raise DatasetError(
            f"{path}: truncated: the header promises {layout} = {expected} bytes of data after the "
            f"{header_len}-byte header, but only {actual} bytes follow ({expected - actual} missing)"
        )
    if actual > expected:
        raise DatasetError(
            f"{path}: {actual - expected} unexpected extra bytes: the header promises {layout} = {expected} "
            f"bytes of data after the {header_len}-byte header, but {actual} follow"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_len)


def read_idx_images(path: str | Path) -> np.ndarray:
    """Images of an IDX3 unsigned-byte file as a read-only ``(N, rows, cols)`` uint8 array."""
    path = Path(path)
    data = read_idx_bytes(path)
    n, rows, cols = _header(data, path, IMAGES_MAGIC, 3, "images")
    if rows == 0 or cols == 0:
        raise DatasetError(f"{path}: the header says images are {rows} x {cols} pixels; both must be positive")
    pixels = _payload(data, path, 16, n * rows * cols, f"{n} images x {rows} x {cols} pixels")
    return pixels.reshape(n, rows, cols)


def read_idx_labels(path: str | Path) -> np.ndarray:
    """Labels of an IDX1 unsigned-byte file as a read-only ``(N,)`` uint8 array."""
    path = Path(path)
    data = read_idx_bytes(path)
    (n,) = _header(data, path, LABELS_MAGIC, 1, "labels")
    return _payload(data, path, 8, n, f"{n} labels x 1 byte")


def _write(path: str | Path, header: bytes, array: np.ndarray, gzip: bool) -> Path:
    path = Path(path)
    data = header + np.ascontiguousarray(array).tobytes()
    path.write_bytes(_gzip.compress(data, compresslevel=6, mtime=0) if gzip else data)
    return path


def _as_uint8(array: np.ndarray, ndim: int, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != ndim:
        raise ValueError(f"{what} must have {ndim} dimension(s), got shape {array.shape}")
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.integer) or (array.size and (array.min() < 0 or array.max() > 255)):
            raise ValueError(f"{what} must be integers in 0..255 (uint8), got dtype {array.dtype}")
        array = array.astype(np.uint8)
    return array


def write_idx_images(path: str | Path, array: np.ndarray, gzip: bool = False) -> Path:
    """Write an ``(N, rows, cols)`` uint8 array as an IDX3 images file (gzipped if ``gzip``)."""
    array = _as_uint8(array, 3, "images")
    return _write(path, struct.pack(">4I", IMAGES_MAGIC, *array.shape), array, gzip)


def write_idx_labels(path: str | Path, array: np.ndarray, gzip: bool = False) -> Path:
    """Write an ``(N,)`` uint8 array as an IDX1 labels file (gzipped if ``gzip``)."""
    array = _as_uint8(array, 1, "labels")
    return _write(path, struct.pack(">2I", LABELS_MAGIC, array.shape[0]), array, gzip)


def idx_file_names(stem: str) -> tuple[str, ...]:
    """The file names accepted for ``stem`` (e.g. ``train-images-idx3-ubyte``), in search order."""
    dotted = stem.replace("-idx", ".idx", 1)
    names = (stem, f"{stem}.gz", dotted, f"{dotted}.gz")
    return tuple(dict.fromkeys(names))


def find_idx_file(folder: str | Path, stem: str) -> Path | None:
    """The first existing file in ``folder`` among :func:`idx_file_names` of ``stem``, else None."""
    folder = Path(folder)
    for name in idx_file_names(stem):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None

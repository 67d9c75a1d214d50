"""Reader for the IDX binary format of (Fashion-)MNIST, written from the format spec.

An IDX file is: two zero bytes, one type byte, one byte with the number of
dimensions ``ndim``, then ``ndim`` big-endian uint32 sizes, then the array data in
C order and big-endian byte order. Files may be gzip-compressed.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from latentmim.data.errors import DataError

# IDX type byte -> numpy dtype (big-endian where it matters).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    """Whole file contents, gunzipped if the file starts with the gzip magic."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"IDX file '{path}' does not exist") from None
    except OSError as exc:
        raise DataError(f"IDX file '{path}' cannot be read: {exc}") from None
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"IDX file '{path}' is a corrupt gzip file: {exc}") from None


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes into an array.

    Args:
        data: Uncompressed IDX file contents.
        source: Name used in error messages (usually the file path).

    Returns:
        Array with the file's shape and dtype, in native byte order.

    Raises:
        DataError: Bad magic number, unknown type, or wrong data length.
    """
    if len(data) < 4:
        raise DataError(f"IDX file '{source}' is too short ({len(data)} bytes) for a header")
    zero, type_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or type_code not in IDX_DTYPES or ndim == 0:
        raise DataError(f"IDX file '{source}' has bad magic number 0x{data[:4].hex()}")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(f"IDX file '{source}' is truncated inside its header")
    shape = struct.unpack(f">{ndim}I", data[4:header_len])
    dtype = IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header_len != expected:
        raise DataError(
            f"IDX file '{source}' has {len(data) - header_len} data bytes, "
            f"expected {expected} for shape {shape}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(shape)
    # Native byte order and a private writable copy, detached from the bytes buffer.
    return array.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzipped or not) into an array; see :func:`parse_idx`."""
    path = Path(path)
    return parse_idx(_read_bytes(path), str(path))


def encode_idx(array: np.ndarray) -> bytes:
    """Encode an array as IDX bytes (inverse of :func:`parse_idx`; used to write test files).

    Args:
        array: Array of one of the dtypes in :data:`IDX_DTYPES` (any byte order), ndim >= 1.
    """
    if array.ndim == 0:
        raise DataError("a 0-dimensional array cannot be stored in an IDX file")
    for code, dtype in IDX_DTYPES.items():
        if array.dtype.kind == dtype.kind and array.dtype.itemsize == dtype.itemsize:
            header = struct.pack(f">HBB{array.ndim}I", 0, code, array.ndim, *array.shape)
            return header + np.ascontiguousarray(array, dtype=dtype).tobytes()
    raise DataError(f"dtype {array.dtype} cannot be stored in an IDX file")

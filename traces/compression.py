"""Compressed trace input (gzip, xz, zstd), recognised by magic bytes, not by file name."""

from __future__ import annotations

import gzip
import io
import lzma
from pathlib import Path
from typing import BinaryIO

import zstandard

__all__ = ["STREAM_ERRORS", "compression_of", "open_decompressed"]

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)

#: What a corrupt or truncated compressed stream raises while it is read.
STREAM_ERRORS: tuple[type[BaseException], ...] = (
    EOFError, gzip.BadGzipFile, lzma.LZMAError, zstandard.ZstdError, OSError)


def compression_of(path: Path) -> str | None:
    """Return ``gzip``, ``xz``, ``zstd`` or ``None`` (plain), from the first bytes."""
    with open(path, "rb") as handle:
        head = handle.read(8)
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def open_decompressed(path: Path) -> BinaryIO:
    """Open ``path`` for reading its content, decompressing it on the fly when compressed."""
    kind = compression_of(path)
    if kind == "gzip":
        return gzip.open(path, "rb")
    if kind == "xz":
        return lzma.open(path, "rb")
    if kind == "zstd":
        raw = open(path, "rb")
        reader = zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)
        return io.BufferedReader(reader, buffer_size=1 << 20)
    return open(path, "rb", buffering=1 << 20)

"""ClickHouse's own compressed-block framing, used by HTTP ``compress=1`` / ``decompress=1``.

Clients that choose LZ4 or ZSTD compression (clickhouse-go ``Compression:
&clickhouse.Compression{Method: clickhouse.CompressionLZ4}``) send and expect
bodies made of blocks::

    checksum   16 bytes  CityHash128 (v1.0.2) of everything after it
    method      1 byte   0x82 LZ4, 0x90 ZSTD, 0x02 none
    size        4 bytes  compressed size including this 9-byte header (LE)
    raw size    4 bytes  uncompressed size (LE)
    payload

Checksums are verified on input and written on output, as the server does.
"""

from __future__ import annotations

import struct

import lz4.block
import zstandard
from clickhouse_cityhash.cityhash import CityHash128

METHOD_NONE = 0x02
METHOD_LZ4 = 0x82
METHOD_ZSTD = 0x90

_METHODS_BY_NAME = {"NONE": METHOD_NONE, "LZ4": METHOD_LZ4, "LZ4HC": METHOD_LZ4, "ZSTD": METHOD_ZSTD}

_HEADER = struct.Struct("<BII")  # method, compressed size incl. header, raw size
_CHECKSUM_SIZE = 16
# ClickHouse's default max_compress_block_size.
_BLOCK_SIZE = 1 << 20
_MAX_BLOCK_SIZE = 1 << 30


class CompressionError(Exception):
    """Raised with the ClickHouse error name that describes the fault."""

    def __init__(self, code_name: str, message: str):
        super().__init__(message)
        self.code_name = code_name


def method_by_name(name: str) -> int:
    method = _METHODS_BY_NAME.get(name.upper())
    if method is None:
        raise CompressionError("UNKNOWN_COMPRESSION_METHOD", f"Unknown compression method: {name}")
    return method


def _checksum(data: bytes | memoryview) -> bytes:
    # clickhouse_cityhash returns (first64 << 64) | second64; the wire holds
    # first64 then second64, each little-endian.
    h = CityHash128(bytes(data))
    return (h >> 64).to_bytes(8, "little") + (h & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")


def decompress(data: bytes) -> bytes:
    """Decodes a whole body of compressed blocks."""
    view = memoryview(data)
    out = bytearray()
    pos = 0
    while pos < len(view):
        if len(view) - pos < _CHECKSUM_SIZE + _HEADER.size:
            raise CompressionError("CANNOT_DECOMPRESS", "Cannot decompress: truncated block header")
        checksum = bytes(view[pos : pos + _CHECKSUM_SIZE])
        method, size, raw_size = _HEADER.unpack_from(view, pos + _CHECKSUM_SIZE)
        if size < _HEADER.size or size > _MAX_BLOCK_SIZE or raw_size > _MAX_BLOCK_SIZE:
            raise CompressionError("CANNOT_DECOMPRESS", f"Cannot decompress: impossible block sizes {size}/{raw_size}")
        start = pos + _CHECKSUM_SIZE
        end = start + size
        if end > len(view):
            raise CompressionError("CANNOT_DECOMPRESS", "Cannot decompress: truncated block")
        if _checksum(view[start:end]) != checksum:
            raise CompressionError("CHECKSUM_DOESNT_MATCH", "Checksum doesn't match: corrupted data")
        payload = bytes(view[start + _HEADER.size : end])
        if method == METHOD_LZ4:
            block = lz4.block.decompress(payload, uncompressed_size=raw_size)
        elif method == METHOD_ZSTD:
            block = zstandard.ZstdDecompressor().decompress(payload, max_output_size=raw_size)
        elif method == METHOD_NONE:
            block = payload
        else:
            raise CompressionError("UNKNOWN_COMPRESSION_METHOD", f"Unknown compression method: 0x{method:02x}")
        if len(block) != raw_size:
            raise CompressionError("CANNOT_DECOMPRESS", "Cannot decompress: size mismatch")
        out += block
        pos = end
    return bytes(out)


def compress(data: bytes, method: int, zstd_level: int = 1) -> bytes:
    """Encodes data as compressed blocks of at most 1 MiB each."""
    out = bytearray()
    view = memoryview(data)
    for start in range(0, len(view), _BLOCK_SIZE):
        chunk = bytes(view[start : start + _BLOCK_SIZE])
        if method == METHOD_LZ4:
            payload = lz4.block.compress(chunk, store_size=False)
        elif method == METHOD_ZSTD:
            payload = zstandard.ZstdCompressor(level=zstd_level).compress(chunk)
        else:
            payload = chunk
        framed = _HEADER.pack(method, _HEADER.size + len(payload), len(chunk)) + payload
        out += _checksum(framed) + framed
    return bytes(out)

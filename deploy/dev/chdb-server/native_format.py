"""Walks ClickHouse Native-format output to add the protocol framing a client asked for.

chDB writes Native blocks as ClickHouse's HTTP interface does for a client that
sends no ``client_protocol_version``: ``columns, rows, (name, type, data)...``.
clickhouse-go sends ``client_protocol_version=54460`` and then expects each
block to start with a BlockInfo structure and each column header to carry a
"has custom serialization" byte. chDB cannot be told the client's revision, so
this module walks the stream, finds each block's and each column's boundaries
from the column types, and inserts those bytes. Column data is copied as is.

Only types whose binary layout is known here are walked; others (Variant,
Dynamic, JSON, Object, AggregateFunction) raise NativeFormatError, and the
server reports the query as NOT_IMPLEMENTED rather than sending a stream the
client would misread.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

# From this client revision on, each column header carries a "has custom
# serialization" byte (DBMS_MIN_REVISION_WITH_CUSTOM_SERIALIZATION). Any
# revision above 0 gets BlockInfo, as in ClickHouse's NativeWriter.
REVISION_WITH_CUSTOM_SERIALIZATION = 54454

# BlockInfo as the server writes it for an ordinary block: field 1
# is_overflows = false, field 2 bucket_num = -1, then the end marker 0.
_BLOCK_INFO = b"\x01\x00\x02\xff\xff\xff\xff\x00"

_FIXED_WIDTH = {
    "UInt8": 1, "Int8": 1, "Bool": 1, "Enum8": 1, "Nothing": 1,
    "UInt16": 2, "Int16": 2, "Date": 2, "Enum16": 2, "BFloat16": 2,
    "UInt32": 4, "Int32": 4, "Float32": 4, "Date32": 4, "DateTime": 4, "IPv4": 4,
    "Decimal32": 4, "Time": 4,
    "UInt64": 8, "Int64": 8, "Float64": 8, "DateTime64": 8, "Decimal64": 8, "Time64": 8,
    "IntervalNanosecond": 8, "IntervalMicrosecond": 8, "IntervalMillisecond": 8,
    "IntervalSecond": 8, "IntervalMinute": 8, "IntervalHour": 8, "IntervalDay": 8,
    "IntervalWeek": 8, "IntervalMonth": 8, "IntervalQuarter": 8, "IntervalYear": 8,
    "UInt128": 16, "Int128": 16, "UUID": 16, "IPv6": 16, "Decimal128": 16,
    "UInt256": 32, "Int256": 32, "Decimal256": 32,
}

# Geo types are aliases of tuples and arrays of Float64.
_ALIASES = {
    "Point": "Tuple(Float64, Float64)",
    "Ring": "Array(Tuple(Float64, Float64))",
    "LineString": "Array(Tuple(Float64, Float64))",
    "Polygon": "Array(Array(Tuple(Float64, Float64)))",
    "MultiLineString": "Array(Array(Tuple(Float64, Float64)))",
    "MultiPolygon": "Array(Array(Array(Tuple(Float64, Float64))))",
}

# SerializationLowCardinality flags in the 64-bit index-type word.
_LC_NEED_GLOBAL_DICTIONARY = 1 << 8
_LC_HAS_ADDITIONAL_KEYS = 1 << 9
_LC_INDEX_WIDTH = {0: 1, 1: 2, 2: 4, 3: 8}


class NativeFormatError(Exception):
    """The stream is malformed or holds a type this module cannot walk."""


@dataclass
class DataType:
    name: str
    args: list["DataType"] = field(default_factory=list)
    raw_args: list[str] = field(default_factory=list)


def parse_type(text: str) -> DataType:
    """Parses a ClickHouse type name such as ``Map(String, Array(LowCardinality(String)))``."""
    text = text.strip()
    if text in _ALIASES:
        return parse_type(_ALIASES[text])
    open_paren = text.find("(")
    if open_paren < 0:
        return DataType(text)
    if not text.endswith(")"):
        raise NativeFormatError(f"cannot parse type {text!r}")
    name = text[:open_paren].strip()
    raw_args = split_top_level(text[open_paren + 1 : -1])
    if name in ("Tuple", "Nested"):
        raw_args = [_strip_element_name(a) for a in raw_args]
    args = []
    if name in ("Nullable", "Array", "LowCardinality", "Map", "Tuple", "Nested"):
        args = [parse_type(a) for a in raw_args]
        arity = {"Map": 2, "Nullable": 1, "Array": 1, "LowCardinality": 1}.get(name)
        if (arity and len(args) != arity) or not args:
            raise NativeFormatError(f"cannot parse type {text!r}")
    elif name == "SimpleAggregateFunction":
        args = [parse_type(raw_args[-1])]
    return DataType(name, args, raw_args)


def split_top_level(text: str) -> list[str]:
    parts, depth, quote, start, i = [], 0, "", 0, 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "'`\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
        i += 1
    tail = text[start:].strip()
    if tail:
        parts.append(tail)
    return parts


def _strip_element_name(arg: str) -> str:
    """``a String`` -> ``String``; `` `a b` String`` -> ``String``; ``String`` -> ``String``."""
    if arg.startswith("`"):
        end = arg.find("`", 1)
        return arg[end + 1 :].strip()
    depth = 0
    for i, c in enumerate(arg):
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == " " and depth == 0:
            return arg[i + 1 :].strip()
    return arg


def _decimal_width(t: DataType) -> int:
    precision = int(t.raw_args[0])
    if precision <= 9:
        return 4
    if precision <= 18:
        return 8
    if precision <= 38:
        return 16
    return 32


class _Reader:
    def __init__(self, data: bytes | memoryview):
        self.data = memoryview(data)
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def take(self, n: int) -> memoryview:
        end = self.pos + n
        if end > len(self.data):
            raise NativeFormatError(f"stream ends inside a value: need {n} bytes at offset {self.pos}")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def skip(self, n: int) -> None:
        self.take(n)

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.take(1)[0]
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise NativeFormatError("varint too long")

    def u64(self) -> int:
        return struct.unpack("<Q", self.take(8))[0]

    def string(self) -> str:
        return bytes(self.take(self.varint())).decode("utf-8", "replace")


def _skip_prefix(r: _Reader, t: DataType) -> None:
    """Skips the serialization state prefix written once before a column's data."""
    if t.name == "LowCardinality":
        r.u64()  # keys serialization version
    else:
        # Compound types write their elements' prefixes in element order.
        for a in t.args:
            _skip_prefix(r, a)


def _skip_data(r: _Reader, t: DataType, rows: int) -> None:
    name = t.name
    if rows == 0:
        return
    width = _FIXED_WIDTH.get(name)
    if width is not None:
        r.skip(width * rows)
    elif name == "String":
        for _ in range(rows):
            r.skip(r.varint())
    elif name == "FixedString":
        r.skip(int(t.raw_args[0]) * rows)
    elif name == "Decimal":
        r.skip(_decimal_width(t) * rows)
    elif name == "Nullable":
        r.skip(rows)  # null map
        _skip_data(r, t.args[0], rows)
    elif name in ("Array", "Map", "Nested"):
        offsets = r.take(8 * rows)
        nested_rows = struct.unpack_from("<Q", offsets, 8 * (rows - 1))[0]
        if name == "Array":
            _skip_data(r, t.args[0], nested_rows)
        else:
            for a in t.args:
                _skip_data(r, a, nested_rows)
    elif name == "Tuple":
        for a in t.args:
            _skip_data(r, a, rows)
    elif name == "SimpleAggregateFunction":
        _skip_data(r, t.args[0], rows)
    elif name == "LowCardinality":
        flags = r.u64()
        if flags & _LC_NEED_GLOBAL_DICTIONARY:
            raise NativeFormatError("LowCardinality with a global dictionary is not supported")
        index_width = _LC_INDEX_WIDTH.get(flags & 0xFF)
        if index_width is None:
            raise NativeFormatError(f"unknown LowCardinality index type {flags & 0xFF}")
        if flags & _LC_HAS_ADDITIONAL_KEYS:
            keys = r.u64()
            inner = t.args[0]
            # The dictionary of LowCardinality(Nullable(T)) holds plain T.
            _skip_data(r, inner.args[0] if inner.name == "Nullable" else inner, keys)
        r.skip(index_width * r.u64())
    else:
        raise NativeFormatError(f"column type {name} is not supported for Native output with client_protocol_version")


def add_protocol_framing(data: bytes, revision: int) -> tuple[bytes, int]:
    """Rewrites revision-0 Native blocks into the layout for ``revision``.

    Returns the rewritten stream and the number of rows it holds.
    """
    if revision <= 0 or not data:
        return data, count_rows(data)
    try:
        return _add_protocol_framing(data, revision)
    except (ValueError, IndexError, struct.error, RecursionError) as e:
        # Type names with bad arguments, such as FixedString(x).
        raise NativeFormatError(f"cannot walk Native stream: {e}") from None


def _add_protocol_framing(data: bytes, revision: int) -> tuple[bytes, int]:
    r = _Reader(data)
    out = bytearray()
    total_rows = 0
    while not r.at_end():
        columns = r.varint()
        rows = r.varint()
        total_rows += rows
        if revision > 0:
            out += _BLOCK_INFO
        out += _varint(columns) + _varint(rows)
        for _ in range(columns):
            header_start = r.pos
            r.string()
            type_name = r.string()
            out += r.data[header_start : r.pos]
            if revision >= REVISION_WITH_CUSTOM_SERIALIZATION:
                out += b"\x00"
            data_start = r.pos
            t = parse_type(type_name)
            if rows:
                _skip_prefix(r, t)
                _skip_data(r, t, rows)
            out += r.data[data_start : r.pos]
    return bytes(out), total_rows


def count_rows(data: bytes) -> int:
    """Counts rows in a revision-0 Native stream; 0 when it cannot be walked."""
    try:
        r = _Reader(data)
        total = 0
        while not r.at_end():
            columns = r.varint()
            rows = r.varint()
            total += rows
            for _ in range(columns):
                r.string()
                t = parse_type(r.string())
                if rows:
                    _skip_prefix(r, t)
                    _skip_data(r, t, rows)
        return total
    except (NativeFormatError, ValueError, IndexError, struct.error, RecursionError):
        return 0


def header_block(columns: list[tuple[str, str]], revision: int) -> bytes:
    """A Native block with zero rows that carries only column names and types."""
    out = bytearray()
    if revision > 0:
        out += _BLOCK_INFO
    out += _varint(len(columns)) + _varint(0)
    for name, type_name in columns:
        out += _string(name) + _string(type_name)
        if revision >= REVISION_WITH_CUSTOM_SERIALIZATION:
            out += b"\x00"
    return bytes(out)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _string(s: str) -> bytes:
    b = s.encode("utf-8")
    return _varint(len(b)) + b

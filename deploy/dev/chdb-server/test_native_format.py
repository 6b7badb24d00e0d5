"""native_format on its own: type parsing and malformed streams."""

from __future__ import annotations

import random

import pytest

import native_format as nf


@pytest.mark.parametrize("text,name,args", [
    ("UInt64", "UInt64", []),
    ("Nullable(IPv6)", "Nullable", ["IPv6"]),
    ("Map(String, Array(LowCardinality(String)))", "Map", ["String", "Array"]),
    ("Tuple(a String, `b c` Nullable(UInt8))", "Tuple", ["String", "Nullable"]),
    ("DateTime64(3, 'Europe/Berlin')", "DateTime64", []),
    ("Enum8('a, b' = 1, 'c)' = 2)", "Enum8", []),
    ("SimpleAggregateFunction(sum, UInt64)", "SimpleAggregateFunction", ["UInt64"]),
    ("Point", "Tuple", ["Float64", "Float64"]),
])
def test_parse_type(text, name, args):
    t = nf.parse_type(text)
    assert t.name == name
    assert [a.name for a in t.args] == args


def test_enum_arguments_keep_quoted_commas():
    assert nf.parse_type("Enum8('a, b' = 1, 'c)' = 2)").raw_args == ["'a, b' = 1", "'c)' = 2"]


def test_unsupported_type_is_reported_not_guessed():
    block = bytes([1, 1]) + b"\x01v" + b"\x07Dynamic" + b"\x00" * 16
    with pytest.raises(nf.NativeFormatError, match="Dynamic"):
        nf.add_protocol_framing(block, 54460)


@pytest.mark.parametrize("type_name", [b"FixedString(x)", b"Decimal", b"Array", b"Map(String)", b"LowCardinality"])
def test_bad_type_arguments_raise_native_format_error(type_name):
    block = bytes([1, 1]) + b"\x01v" + bytes([len(type_name)]) + type_name + b"\x00" * 16
    with pytest.raises(nf.NativeFormatError):
        nf.add_protocol_framing(block, 54460)


def test_revision_zero_is_left_alone():
    block = bytes([1, 1]) + b"\x01x" + b"\x05UInt8" + b"\x07"
    assert nf.add_protocol_framing(block, 0) == (block, 1)


def test_truncated_or_random_streams_raise_only_native_format_error():
    good = bytes([2, 2]) + b"\x01a\x06String\x01x\x02yz" + b"\x01b\x0eNullable(Int8)\x00\x01\x05\x06"
    assert nf.add_protocol_framing(good, 54460)[1] == 2
    rng = random.Random(7)
    for cut in range(1, len(good)):
        with pytest.raises(nf.NativeFormatError):
            nf.add_protocol_framing(good[:cut], 54460)
    for _ in range(2000):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        try:
            nf.add_protocol_framing(junk, 54460)
        except nf.NativeFormatError:
            pass

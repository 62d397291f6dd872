"""valgrind lackey ``--trace-mem=yes`` traces, parsed with vectorised numpy.

Lines look like ``I  0400d7d4,8`` (instruction fetch), `` L 1ffefffd58,8``
(load), `` S ...`` (store), `` M ...`` (modify: load and store); valgrind's
own messages (``==PID== ...``, ``--PID-- ...``) and blank lines are skipped.
Lackey has no clock: order is time, and ``t_ns`` is the access's ordinal
among the ``L``/``S``/``M`` lines (``clock: ordinal``). With the
``instructions`` option, instruction fetches become reads and the ordinal
counts them too.

An access that straddles a page boundary touches both pages: it becomes two
events of weight 0.5, one per page, so the trace's accesses (the sum of
weights) stay equal to its lines while each page is seen touched.

Parsing works on blocks of bytes: ``bytes.count`` checks that every line
starts as a lackey line should, one ``np.flatnonzero`` finds the line ends,
and the address and size of every data line are read as 64-bit words and
checked and converted eight characters at a time (SWAR), never per line in
Python.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np

from migpolicy.hookspecs import hookimpl
from migpolicy.traces.events import (
    EVENT_DTYPE,
    OP_MODIFY,
    OP_READ,
    OP_WRITE,
    TraceFormat,
    TraceOption,
    TraceSource,
)

__all__ = ["read_lackey", "sniff_lackey"]

#: Bytes of text parsed at a time.
BLOCK = 1 << 20
#: Events per yielded chunk (at least; a block's events are never split).
CHUNK = 1 << 16
#: Second character of a data line → op code (0: not a data line).
_OPS = np.zeros(256, dtype=np.uint8)
_OPS[ord("L")], _OPS[ord("S")], _OPS[ord("M")] = OP_READ, OP_WRITE, OP_MODIFY
#: The first three characters of an instruction fetch line, ``"I  "``, as an integer.
_FETCH = np.uint32(0x492020)
#: Framing of a block: a newline ends ``_HEAD``, so every line follows one; gathers
#: reaching before the first line or past the last stay in bounds.
_HEAD = b" " * 15 + b"\n"
_TAIL = b"\0" * 16
#: The characters a line may start with: data line, fetch, valgrind message, blank line.
_FIRST = np.zeros(256, dtype=bool)
_FIRST[[ord(" "), ord("I"), ord("="), ord("-"), ord("\n")]] = True
_LINE = re.compile(rb"^(?:I  | [LSM] )[0-9a-fA-F]{1,16},\d{1,4}$")


def sniff_lackey(head: bytes) -> bool:
    """Lackey output: its banner, or mostly data lines in lackey's layout.

    A few bad lines still sniff as lackey, so the reader can name them.
    """
    if b"Lackey, an example Valgrind tool" in head:
        return True
    lines = [line for line in head.split(b"\n")[:64] if line and not line.startswith(b"==")]
    good = sum(1 for line in lines if _LINE.match(line))
    return bool(lines) and good >= 0.8 * len(lines)


def read_lackey(source: TraceSource) -> Iterator[np.ndarray]:
    """Yield the accesses of a lackey trace in chunks of about ``CHUNK`` events.

    The text is parsed in blocks of ``BLOCK`` bytes, small enough for the
    per-line arrays to stay in the CPU's caches.
    """
    shift = source.page_size.bit_length() - 1
    instructions = bool(source.options.get("instructions", False))
    source.hints["clock"] = "ordinal"
    line_no = 0  # lines before the block
    record = 0  # records (the clock's ticks) before the block
    carry = b""
    parsed: list[np.ndarray] = []
    pending = 0
    while True:
        block = source.stream.read(BLOCK)
        if not block:
            if carry:  # the last line has no newline
                events, _, _ = _parse_block(b"".join((_HEAD, carry, b"\n", _TAIL)), shift,
                                            instructions, line_no, record)
                parsed.append(events)
            if any(len(events) for events in parsed):
                yield np.concatenate(parsed)
            return
        end = block.rfind(b"\n") + 1
        if not end:
            carry += block
            continue
        data = b"".join((_HEAD, carry, memoryview(block)[:end], _TAIL))
        carry = block[end:]
        events, lines, records = _parse_block(data, shift, instructions, line_no, record)
        line_no += lines
        record += records
        parsed.append(events)
        pending += len(events)
        if pending >= CHUNK:
            yield np.concatenate(parsed)
            parsed, pending = [], 0


def _words(data: bytes, at: np.ndarray, size: int) -> np.ndarray:
    """The ``size``-byte big-endian integers starting at byte offsets ``at`` of ``data``.

    The first character lands in the most significant byte, as in a number written out.
    """
    dtype = np.dtype(f"<u{size}")
    view = np.ndarray(shape=(len(data) - size + 1,), dtype=dtype, buffer=data, strides=(1,))
    return view[at].byteswap(inplace=True)


_L8, _H8 = np.uint64(0x0101010101010101), np.uint64(0x8080808080808080)
_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


def _at_least(x: np.ndarray, n: int) -> np.ndarray:
    """High bit of each byte lane set where that byte (below 0x80) is at least ``n``."""
    return ((x | _H8) - _L8 * np.uint64(n)) & _H8


def _not_hex(x: np.ndarray) -> np.ndarray:
    """High bit of each byte lane set where that byte is not a hexadecimal digit."""
    lower = x | (_L8 * np.uint64(0x20))
    digit = _at_least(x, 0x30) & ~_at_least(x, 0x3A)
    letter = _at_least(lower, 0x61) & ~_at_least(lower, 0x67)
    return ((digit | letter) ^ _H8) | (x & _H8)


def _not_decimal(x: np.ndarray) -> np.ndarray:
    """High bit of each byte lane set where that byte is not a decimal digit."""
    return ((_at_least(x, 0x30) & ~_at_least(x, 0x3A)) ^ _H8) | (x & _H8)


def _nibbles(x: np.ndarray) -> np.ndarray:
    """Eight hexadecimal digits (one per byte lane, big-endian) → their 32-bit value."""
    x = (x & (_L8 * np.uint64(15))) + ((x >> np.uint64(6)) & _L8) * np.uint64(9)
    x = (x | (x >> np.uint64(4))) & np.uint64(0x00FF00FF00FF00FF)
    x = (x | (x >> np.uint64(8))) & np.uint64(0x0000FFFF0000FFFF)
    return (x | (x >> np.uint64(16))) & np.uint64(0x00000000FFFFFFFF)


#: ``_LANES[k]``: a mask of the ``k`` (0..8) least significant byte lanes.
_LANES = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)
#: ``_DIGITS[k]``: a mask of the ``k`` (0..16) least significant hexadecimal digits.
_DIGITS = np.array([(1 << (4 * k)) - 1 for k in range(17)], dtype=np.uint64)
#: The comma flag of byte lane ``k`` (1..5 from the end): ``k - 1`` size digits follow it.
_COMMA_LANES = np.array([0x80 << (8 * k) for k in range(1, 6)], dtype=np.uint64)


def _parse_block(data: bytes, shift: int, instructions: bool, line_no: int,
                 record: int) -> tuple[np.ndarray, int, int]:
    """Parse ``data``: whole lines between ``_HEAD`` and ``_TAIL``; return events, lines, records.

    When fetches are not wanted and every line starts with a character a
    lackey line may start with, only the data lines (those starting with a
    space) are looked at further; otherwise every line is classified and the
    first bad one reported. Each data line's last 8 bytes (one big-endian
    word) locate the comma and hold the size; the 16 bytes before the comma
    (two words) hold the address. Every check and conversion works on those
    words, eight characters at a time.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10)  # the first one ends _HEAD
    starts, ends = newlines[:-1] + 1, newlines[1:]
    nlines = len(ends)
    first = buf[starts]
    rows = None
    if not instructions and _FIRST[first].all():
        fetches = starts[first == 73]
        if not ((buf[fetches + 1] != 32) | (buf[fetches + 2] != 32)).any():  # "I  "
            rows = np.flatnonzero(first == 32)
    if rows is not None:  # " L ", " S ", " M " are the only lines starting with a space
        s, e = starts[rows], ends[rows]
        ops = _OPS[buf[s + 1]]
        if not ops.all() or (buf[s + 2] != 32).any():
            rows = None  # a bad data line: classify every line to report it
    if rows is not None:
        records = len(rows)
        t = record + np.arange(records, dtype=np.int64)
    else:
        head = _words(data, starts, 4) >> np.uint32(8)  # the first three characters
        fetch = head == _FETCH
        ops = _OPS[(head >> np.uint32(8)) & np.uint32(255)]
        ops[(head & np.uint32(0xFF00FF)) != 0x200020] = 0  # " L ", " S ", " M "
        is_record = fetch | (ops != 0)
        if not is_record.all():  # valgrind's messages and blank lines; anything else is garbage
            other = np.flatnonzero(~is_record)
            first_two = head[other] >> np.uint32(8)
            fine = (first_two == 0x3D3D) | (first_two == 0x2D2D) | (starts[other] == ends[other])
            if not fine.all():
                _fail(data, starts, ends, line_no, int(other[np.argmin(fine)]))
        if instructions:
            ops[fetch] = OP_READ
            order = np.cumsum(is_record) - 1  # each line's record number within the block
        rows = np.flatnonzero(ops)  # fetches are not checked further unless counted
        s, e, ops = starts[rows], ends[rows], ops[rows]
        records = len(rows)
        t = record + (order[rows] if instructions else np.arange(records, dtype=np.int64))
    tail = _words(data, e - 8, 8)  # the last 8 characters of each line
    commas = tail ^ (_L8 * np.uint64(0x2C))
    found = (commas - _L8) & ~commas & _H8  # exact for the lowest (last) comma
    lowest = found & (~found + np.uint64(1))
    size_digits = np.searchsorted(_COMMA_LANES, lowest) + 1  # 1..4 when the comma is in place
    digits = e - 1 - size_digits - s - 3
    shape_ok = (size_digits <= 4) & (lowest == _COMMA_LANES[np.minimum(size_digits, 5) - 1]) & (
        digits >= 1) & (digits <= 16)
    if not shape_ok.all():
        _fail(data, starts, ends, line_no, int(rows[np.argmin(shape_ok)]))
    comma = e - 1 - size_digits
    high, low = _words(data, comma - 16, 8), _words(data, comma - 8, 8)
    size_lanes = _LANES[size_digits]
    bad = ((_not_hex(low) & _LANES[np.minimum(digits, 8)])
           | (_not_hex(high) & _LANES[np.maximum(digits - 8, 0)])
           | (_not_decimal(tail) & size_lanes))
    if bad.any():
        _fail(data, starts, ends, line_no, int(rows[np.argmax(bad != 0)]))
    addr = ((_nibbles(high) << np.uint64(32)) | _nibbles(low)) & _DIGITS[digits]
    sizes = (tail & size_lanes & (_L8 * np.uint64(15))).view(np.int64)
    size = ((sizes >> 24) & 255) * 1000 + ((sizes >> 16) & 255) * 100 + (
        (sizes >> 8) & 255) * 10 + (sizes & 255)
    size = np.maximum(size, 1)
    addr = addr.view(np.int64)
    first_page = addr >> shift
    last_page = (addr + size - 1) >> shift
    straddle = last_page != first_page
    if not straddle.any():
        events = np.empty(len(addr), dtype=EVENT_DTYPE)
        events["t_ns"], events["page"], events["op"], events["weight"] = t, first_page, ops, 1.0
    else:
        if (last_page - first_page > 1).any():
            i = int(np.flatnonzero(last_page - first_page > 1)[0])
            raise ValueError(f"line {line_no + int(rows[i]) + 1}: an access of {size[i]} bytes "
                             "spans more than two pages; use a larger --page-size")
        reps = 1 + straddle.astype(np.int64)
        events = np.empty(int(reps.sum()), dtype=EVENT_DTYPE)
        events["t_ns"] = np.repeat(t, reps)
        events["op"] = np.repeat(ops, reps)
        events["weight"] = np.repeat(np.where(straddle, 0.5, 1.0), reps)
        pages = np.repeat(first_page, reps)
        pages[np.cumsum(reps)[straddle] - 1] += 1
        events["page"] = pages
    events["tenant"] = 0
    return events, nlines, records


def _fail(data: bytes, starts: np.ndarray, ends: np.ndarray, line_no: int, index: int) -> None:
    text = data[starts[index]:ends[index]].decode("utf-8", "replace")
    raise ValueError(f"line {line_no + index + 1}: expected a lackey line such as "
                     f"' L 1ffefffd58,8', got {text[:60]!r}")


LACKEY = TraceFormat(
    name="lackey",
    summary="valgrind --tool=lackey --trace-mem=yes output (order is time)",
    sniff=sniff_lackey,
    read=read_lackey,
    parameters=(TraceOption("instructions", False,
                            "also count instruction fetches (I lines) as reads"),),
    priority=40,
)


@hookimpl(trylast=True)
def migpolicy_trace_formats():
    return [LACKEY]

"""valgrind lackey ``--trace-mem=yes`` traces, parsed with vectorised numpy.

Lines look like ``I  0400d7d4,8`` (instruction fetch), `` L 1ffefffd58,8``
(load), `` S ...`` (store), `` M ...`` (modify: load and store); valgrind's
own messages (``==PID== ...``, ``--PID-- ...``) and blank lines are skipped.
Lackey has no clock: order is time, and ``t_ns`` is the record's ordinal
among all ``I``/``L``/``S``/``M`` lines (``clock: ordinal``), so skipped
instruction fetches still advance it. Instruction fetches become reads only
with the ``instructions`` option.

An access that straddles a page boundary touches both pages: it becomes two
events of weight 0.5, one per page, so the trace's accesses (the sum of
weights) stay equal to its lines while each page is seen touched.

Parsing works on blocks of bytes: line ends and commas are found with
``np.flatnonzero``, the hexadecimal address of every line is gathered right-
aligned into 16 nibbles and packed into a big-endian uint64 in one step.
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

BLOCK = 8 << 20
_HEX = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _HEX[_c] = 10 + _i
_DEC = np.full(256, 255, dtype=np.uint8)
_DEC[48:58] = np.arange(10)
_OPS = np.zeros(256, dtype=np.uint8)
_OPS[ord("L")], _OPS[ord("S")], _OPS[ord("M")] = OP_READ, OP_WRITE, OP_MODIFY
_POW10 = 10 ** np.arange(5, -1, -1, dtype=np.int64)
_LINE = re.compile(rb"^(?:I  | [LSM] )[0-9a-fA-F]{1,16},\d{1,6}$")


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
    """Yield the accesses of a lackey trace, one chunk per block of the file."""
    shift = source.page_size.bit_length() - 1
    instructions = bool(source.options.get("instructions", False))
    source.hints["clock"] = "ordinal"
    line_no = 0  # lines before the block
    record = 0  # I/L/S/M records before the block
    carry = b""
    while True:
        block = source.stream.read(BLOCK)
        data = carry + block
        if not block:
            if not data:
                return
            data += b"\n"  # last line without a newline
        end = data.rfind(b"\n") + 1
        carry = data[end:]
        if end:
            events, lines, records = _parse_block(data[:end], shift, instructions, line_no, record)
            line_no += lines
            record += records
            if len(events):
                yield events
        if not block:
            return


def _parse_block(data: bytes, shift: int, instructions: bool, line_no: int,
                 record: int) -> tuple[np.ndarray, int, int]:
    pad = 16
    buf = np.frombuffer(b"0" * pad + data, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10)
    starts = np.empty_like(ends)
    starts[0] = pad
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts
    nlines = len(ends)
    tail = np.concatenate([buf, np.zeros(3, np.uint8)])
    c0, c1, c2 = tail[starts], tail[starts + 1], tail[starts + 2]
    message = ((c0 == ord("=")) & (c1 == ord("="))) | ((c0 == ord("-")) & (c1 == ord("-")))
    blank = lengths == 0
    fetch = (c0 == ord("I")) & (c1 == ord(" ")) & (c2 == ord(" "))
    data_op = (c0 == ord(" ")) & ((c1 == ord("L")) | (c1 == ord("S")) | (c1 == ord("M"))) & (
        c2 == ord(" "))
    is_record = fetch | data_op
    bad = ~(is_record | message | blank)
    rec_idx = np.flatnonzero(is_record)
    s, e = starts[rec_idx], ends[rec_idx]
    commas = np.flatnonzero(buf == 44)
    where = np.searchsorted(commas, s)
    comma = commas[np.minimum(where, len(commas) - 1)] if len(commas) else np.full_like(s, -1)
    digits = comma - s - 3
    size_digits = e - comma - 1
    shape_bad = (where >= len(commas)) | (comma >= e) | (digits < 1) | (digits > 16) | (
        size_digits < 1) | (size_digits > 6)
    comma = np.where(shape_bad, s + 4, comma)  # keep gathers in bounds; reported below
    e_safe = np.where(shape_bad, s + 6, e)
    nib = _HEX[buf[comma[:, None] - 16 + np.arange(16)]]
    nib[np.arange(16) < 16 - (comma - s - 3)[:, None]] = 0
    dec = _DEC[buf[e_safe[:, None] - 6 + np.arange(6)]]
    dec[np.arange(6) < 6 - (e_safe - comma - 1)[:, None]] = 0
    value_bad = (nib == 255).any(axis=1) | (dec == 255).any(axis=1)
    rec_bad = shape_bad | value_bad
    if bad.any() or rec_bad.any():
        first = min(int(np.flatnonzero(bad)[0]) if bad.any() else nlines,
                    int(rec_idx[np.flatnonzero(rec_bad)[0]]) if rec_bad.any() else nlines)
        text = data[starts[first] - pad:ends[first] - pad].decode("utf-8", "replace")
        raise ValueError(f"line {line_no + first + 1}: expected a lackey line such as "
                         f"' L 1ffefffd58,8', got {text[:60]!r}")
    packed = (nib[:, 0::2] << 4) | nib[:, 1::2]
    addr = np.ascontiguousarray(packed).view(">u8").ravel().astype(np.int64)
    size = np.maximum(dec.astype(np.int64) @ _POW10, 1)
    ops = _OPS[c1[rec_idx]]
    ops[fetch[rec_idx]] = OP_READ
    t = record + np.arange(len(rec_idx), dtype=np.int64)
    keep = data_op[rec_idx] if not instructions else slice(None)
    addr, size, ops, t = addr[keep], size[keep], ops[keep], t[keep]
    first_page = addr >> shift
    last_page = (addr + size - 1) >> shift
    if (last_page - first_page > 1).any():
        i = int(np.flatnonzero(last_page - first_page > 1)[0])
        raise ValueError(f"record {int(t[i]) + 1}: an access of {size[i]} "
                         f"bytes spans more than two pages")
    straddle = last_page != first_page
    events = np.empty(len(addr) + int(straddle.sum()), dtype=EVENT_DTYPE)
    if len(events) == len(addr):
        events["t_ns"], events["page"], events["op"], events["weight"] = t, first_page, ops, 1.0
    else:
        reps = 1 + straddle.astype(np.int64)
        events["t_ns"] = np.repeat(t, reps)
        events["op"] = np.repeat(ops, reps)
        events["weight"] = np.repeat(np.where(straddle, 0.5, 1.0), reps)
        pages = np.repeat(first_page, reps)
        second = np.cumsum(reps)[straddle] - 1
        pages[second] += 1
        events["page"] = pages
    events["tenant"] = 0
    return events, nlines, len(rec_idx)


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

"""ChampSim binary traces: one 64-byte ``input_instr`` record per instruction.

The record (ChampSim's ``trace_instruction.h``) is::

    uint64 ip; uint8 is_branch; uint8 branch_taken;
    uint8 destination_registers[2]; uint8 source_registers[4];
    uint64 destination_memory[2]; uint64 source_memory[4];

little-endian. Every non-zero ``source_memory`` operand becomes a read and
every non-zero ``destination_memory`` operand a write; ``t_ns`` is the
instruction's index (``clock: ordinal``). Traces usually come ``.xz``
compressed and are read directly.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from migpolicy.hookspecs import hookimpl
from migpolicy.traces.events import EVENT_DTYPE, OP_READ, OP_WRITE, TraceFormat, TraceSource

__all__ = ["RECORD_DTYPE", "read_champsim", "sniff_champsim"]

RECORD_DTYPE = np.dtype([
    ("ip", "<u8"), ("is_branch", "u1"), ("branch_taken", "u1"),
    ("destination_registers", "u1", (2,)), ("source_registers", "u1", (4,)),
    ("destination_memory", "<u8", (2,)), ("source_memory", "<u8", (4,)),
])
assert RECORD_DTYPE.itemsize == 64
#: Records per block read.
BLOCK = 1 << 16


def sniff_champsim(head: bytes) -> bool:
    """Whole 64-byte records whose branch flags are 0/1 and whose ip is set: not text."""
    n = len(head) // 64
    if n == 0:
        return False
    records = np.frombuffer(head[: n * 64], dtype=RECORD_DTYPE)
    flags_ok = (records["is_branch"] <= 1) & (records["branch_taken"] <= records["is_branch"])
    return bool(flags_ok.all() and (records["ip"] != 0).all())


def read_champsim(source: TraceSource) -> Iterator[np.ndarray]:
    """Yield the memory operands of every instruction as read and write events."""
    shift = source.page_size.bit_length() - 1
    source.hints["clock"] = "ordinal"
    index = 0
    while True:
        block = source.stream.read(BLOCK * 64)
        if not block:
            return
        if len(block) % 64:
            rest = source.stream.read(64 - len(block) % 64)
            block += rest
            if len(block) % 64:
                whole = index + len(block) // 64
                raise ValueError(f"record {whole + 1} is cut short: {len(block) % 64} of its 64 "
                                 "bytes are present (a truncated ChampSim trace)")
        records = np.frombuffer(block, dtype=RECORD_DTYPE)
        bad = (records["is_branch"] > 1) | (records["branch_taken"] > 1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"record {index + i + 1}: branch flags {records['is_branch'][i]}/"
                             f"{records['branch_taken'][i]} are not 0/1; not a ChampSim trace")
        memory = np.concatenate([records["source_memory"], records["destination_memory"]], axis=1)
        ops = np.repeat(np.array([OP_READ] * 4 + [OP_WRITE] * 2, dtype=np.uint8)[None, :],
                        len(records), axis=0)
        numbers = np.arange(index, index + len(records), dtype=np.int64)
        instr = np.repeat(numbers[:, None], 6, axis=1)
        used = memory != 0
        addr = memory[used]
        out = np.empty(len(addr), dtype=EVENT_DTYPE)
        out["t_ns"] = instr[used]
        out["page"] = (addr >> np.uint64(shift)).astype(np.int64)
        out["op"] = ops[used]
        out["tenant"] = 0
        out["weight"] = 1.0
        index += len(records)
        if len(out):
            yield out


CHAMPSIM = TraceFormat(
    name="champsim",
    summary="ChampSim binary instruction trace (64-byte records, usually .xz)",
    sniff=sniff_champsim,
    read=read_champsim,
    priority=90,
)


@hookimpl(trylast=True)
def migpolicy_trace_formats():
    return [CHAMPSIM]

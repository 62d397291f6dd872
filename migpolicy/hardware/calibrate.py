"""Calibration: measure what this machine's copies really cost and fit the ``local`` profile.

``migpolicy hw calibrate`` runs here. It copies folios of every size from
4 KiB to 2 MiB, batches of 1 to thousands of folios, with 1 to N threads
(the ``cpu`` engine: one thread; ``mt``: 1, 2, 4 ... N worker threads), on a
GPU through :mod:`migpolicy.execute` where CuPy or PyTorch sees one, and with
``move_pages(2)`` where the machine has two or more NUMA nodes. Every
experiment is sampled several times, in a shuffled order, and all samples are
kept. The analytic parameters copies can determine are then fitted with
:func:`migpolicy.hardware.fit.fit_parameters`, starting from the shipped
``local`` profile, and written as a profile whose fitted and topology values
carry a ``measured`` provenance (host, date, command).

The measurements themselves (what is copied, how it is timed, and why) are
:mod:`migpolicy.hardware.measure`'s.
"""

from __future__ import annotations

import contextlib
import os
import platform
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from migpolicy import execute
from migpolicy.errors import ConfigError, InputError, MigpolicyError
from migpolicy.files import atomic_output, atomic_write_text, check_output
from migpolicy.hardware import numa
from migpolicy.hardware.fit import FitResult, fit_parameters
from migpolicy.hardware.limits import check_folio_size
from migpolicy.hardware.measure import (
    GPU_STREAMS,
    Experiment,
    Measurement,
    Progress,
    Settings,
    Silent,
    measure,
    plan,
    table_rows,
    table_text,
)
from migpolicy.hardware.predict import pipeline_predictor
from migpolicy.hardware.profile import Node, Profile, Provenance, Value, load_profile, today
from migpolicy.hardware.tables import Predictor

__all__ = ["PROVENANCE_ID", "CalibrationResult", "calibrate", "destinations"]

PROVENANCE_ID = "calibration"
#: Plausible ranges: with too few thread counts a cap can run off to infinity.
_BOUNDS = {"memory.thread_gbps": (0.05, 500.0), "memory.ccd_gbps": (0.05, 5e3),
           "memory.link_gbps": (0.05, 5e3)}

@dataclass
class CalibrationResult:
    """A calibrated profile, where it and its measurements were written, and the fit."""

    profile: Profile
    profile_path: Path
    table_path: Path
    fit: FitResult
    measurements: list[Measurement]
    notes: list[str]
    free: list[str]


def destinations(out: str | Path) -> tuple[Path, Path]:
    """The profile and table paths a calibration writes, checked before measuring starts."""
    out = check_output(out, "calibrated profile")
    return out, check_output(out.with_suffix(".csv"), "calibration measurements")


def _write_results(profile: Profile, out: Path, table_path: Path,
                   measurements: Sequence[Measurement]) -> None:
    """Write the profile and its table together; if that fails, keep both elsewhere.

    Both go to temporary files first and are renamed only when both are
    complete, so an error or Ctrl-C leaves neither half-written. Measuring
    took minutes: when the destination fails now (a disk filled up, a
    directory vanished), they are written to a fresh temporary directory and
    the error says where.
    """
    texts = ((table_path, table_text(measurements), "calibration measurements"),
             (out, profile.to_yaml(), "calibrated profile"))
    try:
        with contextlib.ExitStack() as stack:
            for path, text, what in texts:
                stack.enter_context(atomic_output(path, "w", what)).write(text)
    except MigpolicyError as exc:
        rescue = Path(tempfile.mkdtemp(prefix="migpolicy-calibration-"))
        for path, text, what in texts:
            atomic_write_text(rescue / path.name, text, what)
        raise InputError(f"{exc}; the measurements and the fitted profile were saved in "
                         f"{rescue} instead") from None


def _measured_nodes(base: Profile, found: Sequence[numa.NodeInfo], prov: Provenance) -> dict:
    """The profile's nodes rebuilt from this machine's topology (measured values)."""
    template = base.nodes[min(base.nodes)]
    nodes = {}
    for info in found:
        params = dict(base.nodes[info.id].params if info.id in base.nodes else template.params)
        topology = {"ccds": info.ccds if info.cpus else 0, "cores_per_ccd": info.cores_per_ccd,
                    "smt": info.smt}
        if info.memory_bytes:
            topology["capacity"] = info.memory_bytes
        params.update({k: Value(float(v), prov) for k, v in topology.items()})
        nodes[info.id] = Node(info.id, f"node{info.id}", "dram" if info.cpus else "cpuless",
                              params)
    return nodes


def _free_parameters(experiments: Sequence[Experiment], hw: Profile, multi_node: bool
                     ) -> tuple[list[str], dict[str, str]]:
    """The parameters these experiments determine, and the ones tied to them."""
    engines = {e.engine for e in experiments if e.scope == "copy"}
    free: list[str] = []
    ties: dict[str, str] = {}
    if engines & {"cpu", "mt"}:
        cap = "memory.link_gbps" if multi_node else f"nodes.{min(hw.nodes)}.bandwidth_gbps"
        free += ["memory.thread_gbps", cap, "memory.saturation", "engines.cpu.folio_ns"]
        if hw.nodes[min(hw.nodes)]["ccds"] > 1:
            free.append("memory.ccd_gbps")
        else:  # one LLC domain: its cap and the memory path's are the same constant
            ties["memory.ccd_gbps"] = cap
    if "mt" in engines:
        free.append("engines.mt.thread_start_ns")
    if "gpu" in engines:
        free += ["engines.gpu.launch_ns", "engines.gpu.folio_ns", "engines.gpu.stream_gbps",
                 "engines.gpu.link_gbps"]
        if "memory.saturation" not in free:
            free.append("memory.saturation")
    if any(e.scope == "move" for e in experiments):
        free += ["stages.isolate.folio_ns", "stages.batch.batch_ns"]
        ties["stages.remap.folio_ns"] = "stages.isolate.folio_ns"
    return free, ties


def _usable_nodes(nodes: list[numa.NodeInfo], notes: list[str]) -> list[numa.NodeInfo]:
    """``nodes``, or only the first when pages cannot be placed on the second."""
    if len(nodes) < 2:
        return nodes
    try:
        numa.place(np.ones(2 * os.sysconf("SC_PAGE_SIZE"), dtype=np.uint8), nodes[1].id)
    except OSError as exc:
        notes.append(f"move_pages failed ({exc}): calibrating node {nodes[0].id} alone")
        return nodes[:1]
    return nodes


def _description(host: str, nodes: Sequence[numa.NodeInfo], experiments: Sequence[Experiment]
                 ) -> str:
    cpus = sum(len(n.cpus) for n in nodes)
    ccds = sum(n.ccds for n in nodes if n.cpus)
    copies = ", ".join(sorted({e.engine for e in experiments if e.scope == "copy"}))
    moved = any(e.scope == "move" for e in experiments)
    stages = ("isolate and batch costs from move_pages(2) (remap tied to isolate)" if moved
              else "no stage costs (one NUMA node: move_pages(2) has nowhere to move pages)")
    return (f"This machine ({host}): {cpus} CPUs in {ccds} LLC domain(s) on {len(nodes)} NUMA "
            f"node(s). Measured by `migpolicy hw calibrate`: the topology, the {copies} "
            f"copy engine(s) and {stages}; every other value is still assumed.")


def _fit_trusted(fit: Callable[..., FitResult], predict: Predictor, hw: Profile,
                 rows: np.ndarray, free: list[str], prov: Provenance, ties: dict[str, str],
                 progress: Progress, notes: list[str]) -> FitResult:
    """Fit ``free``; a parameter that ends at a bound keeps the base profile's value.

    A value stuck at the edge of its plausible range (``memory.thread_gbps``
    at 500 GB/s, ``engines.cpu.folio_ns`` at nothing) says the measurements
    cannot tell it, not what it is: it is dropped from the free parameters and
    the rest refitted, so no such value is ever written as measured.
    """
    for _ in range(len(free)):
        result = fit(predict, hw, rows, free, prov, ties=ties, bounds=_BOUNDS,
                     progress=lambda n: progress.advance(n))
        if not result.converged:
            raise ConfigError(f"calibration fit of {', '.join(free)} did not converge "
                              f"({result.message}); no profile written")
        stuck = [name for name in result.at_bound if name in free]
        if not stuck or len(stuck) == len(free):
            break
        free = [name for name in free if name not in stuck]
        ties = {dep: src for dep, src in ties.items() if src in free}
        note = (f"{', '.join(stuck)} ended at a bound of the plausible range: kept at the "
                "base profile's value and refitted the rest")
        notes.append(note)
        progress.note(note)
    if result.at_bound:
        raise ConfigError(f"calibration fit left {', '.join(result.at_bound)} at a bound of "
                          "the plausible range; no profile written")
    return result


def calibrate(
    pm: Any,
    base: Profile,
    base_params: dict[str, Any],
    settings: Settings,
    out: str | Path,
    *,
    command: str,
    progress: Progress | None = None,
    fit: Callable[..., FitResult] = fit_parameters,
) -> CalibrationResult:
    """Measure this machine, fit ``base``'s parameters, write the profile and its table.

    The profile goes to ``out`` and the measurements beside it (same name,
    ``.csv``); both destinations are checked before measuring. Raises
    :class:`ConfigError`, writing nothing, when the fit does not converge.
    """
    progress = progress or Silent()
    out, table_path = destinations(out)
    for size in settings.sizes:
        check_folio_size(base, size, "--sizes")
    settings = replace(settings, batch=int(base_params.get("batch.max_folios", settings.batch)))
    notes: list[str] = []
    unknown = set(settings.engines) - {"cpu", "mt", "gpu"}
    if unknown:
        raise InputError(f"--engines: calibration measures cpu, mt and gpu, not "
                         f"{', '.join(sorted(unknown))}")
    gpu = "gpu" in settings.engines and execute.gpu_backend() is not None
    if "gpu" in settings.engines and not gpu:
        notes.append("gpu skipped: neither CuPy nor PyTorch sees a CUDA GPU on this machine")
    nodes = _usable_nodes(numa.detect_nodes(), notes)
    if len(nodes) < 2:
        notes.append("move_pages skipped: this machine has one NUMA node, so pages have "
                     "nowhere to move")
    for note in notes:
        progress.note(note)
    host = platform.node() or "unknown-host"
    prov = Provenance(PROVENANCE_ID, "measured",
                      {"host": host, "date": today(), "command": command})
    experiments = plan(settings, gpu=gpu, nodes=len(nodes))
    if not experiments:
        raise InputError(f"calibration has nothing to measure: no folio size and count fit in "
                         f"{settings.max_bytes} bytes for engines {', '.join(settings.engines)}")
    measurements = measure(experiments, settings, progress, nodes)

    topology = {"engines.mt.max_threads": float(os.cpu_count() or 1)}
    if gpu:
        topology["engines.gpu.streams"] = float(max(GPU_STREAMS))
    hw = replace(base, nodes=_measured_nodes(base, nodes, prov))
    hw = hw.with_values({k: v for k, v in topology.items() if hw.has(k.rsplit(".", 1)[0])}, prov)
    free, ties = _free_parameters(experiments, hw, len(nodes) > 1)
    rows = table_rows(measurements)
    progress.phase("fitting", None)
    result = _fit_trusted(fit, pipeline_predictor(pm, base_params), hw, rows, free, prov, ties,
                          progress, notes)
    for warning in result.warnings():
        notes.append(warning)
        progress.note(warning)
    free = [name for name in free if name in result.values]
    profile = result.profile.renamed("local", _description(host, nodes, experiments))
    profile = replace(profile, path=out, kernel=platform.release() or None)
    _write_results(profile, out, table_path, measurements)
    return CalibrationResult(profile=load_profile(out), profile_path=out, table_path=table_path,
                             fit=result, measurements=measurements, notes=notes, free=free)

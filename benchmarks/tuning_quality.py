"""Tuning quality: replays the tuner needs to come within 2% of an exhaustive grid's optimum.

For each generated trace (``phases``: a hot set moving between phases;
``zipf``: a fixed zipf hot set; ``tenants``: three tenants with zipf, scan and
GUPS patterns; 100,000 events over 1,024 pages, one access per microsecond,
so 100 epochs of 1 ms; written once to a native file) and each hardware
profile with a fast and a slow tier (``dram-cxl``: DRAM + CXL expander;
``gh200``: LPDDR5X + HBM3), with the fast tier sized to 25% of the footprint
and a quarter of the CPUs busy with other work (``system.load`` 0.25, so
asynchronous migration takes CPU time from the program and the copy engine
matters):

1. **Grid**: every combination of placement policy (``none``, ``numab``,
   ``hist``, ``damos``) with one or two key constants each, demotion
   (``none``, ``watermark``), copy engine with its worker count (cpu; mt
   with 4/16/64 threads; dma with 2/8 channels) and batch size (16, 128,
   1024 folios): 900 policies, each replayed in full (``Tuner.evaluate``). Every other
   parameter is fixed at its default on the profile. The minimum is the grid
   optimum. Results are cached in a JSON file (``--cache``) so a rerun only
   replays what changed; each cached combination is checked by replaying its
   optimum again.
2. **Tuner**: ``migpolicy.tuning.study`` on the same trace and profile, one
   trace per tuner, with ``--seeds`` seeds per arm: **random** search
   (``RandomSampler``, no pruner), **plain TPE** (``TPESampler``, no
   pruner, no screening, one report per trace) and **TPE + model + pruning**
   (the tuner's defaults: a learned model that screens
   candidates, prefix replays reported to the tuner's pruner, and a candidate
   that ties a finished trial through 5/8 of its prefixes matched to it). A run stops
   when its best full replay is within 2% of the grid optimum or after
   ``--budget`` (a fraction of the grid size) full replays.

Reported per trace x profile x arm: the median over seeds of the number of
full replays until the best one is within 2% of the grid optimum ("not
reached" when the median run did not get there), the same in
**replay-equivalents** (events replayed, counting pruned prefixes, divided by
the trace's events; screened-out candidates cost no replay), the median as a
fraction of the grid's size, and the ratio plain TPE / TPE + model + pruning.
Targets (issue 10): the model+pruning arm within 5% of the grid's
evaluations, and at least halving plain TPE's full replays. ``--audit``
replays every screened-out, pruned and matched candidate in full after its
run and counts those that were within 2% of the optimum or better than the
run's best (the decisions that cost a run its answer), and the matched ones
whose full replay differed from the trial they matched.

**Fairness.** The tuner searches the region the grid spans, not the whole
declared space: the same parameters are fixed (``Tuner(fixed=...)``), the
categorical choices are the grid's, and each numeric parameter is narrowed to
the grid's range (through the ``migpolicy_search_space`` hook, the plugins'
own way to narrow the space) on the parameter's declared scale. A numeric
range holds points between the grid's, some better than any grid point;
reaching those counts as reaching the grid optimum, since a user wants the
best policy, not a grid point. The tuner also pays for its first trial, the
kernel default (``numab`` + ``watermark``), which a new study always replays.
Also printed: how many grid points are within 2% of the optimum, since
random search needs about ``grid size / that count`` replays.

Every objective is the **modelled** application time of the replay (profile
figures, see ``migpolicy hw show``); the counts of replays do not depend on
this machine's speed.

    python benchmarks/tuning_quality.py [--seeds 5] [--budget 0.1] [--cache PATH] [--json]
    python benchmarks/tuning_quality.py --trace zipf --hw dram-cxl --arm tpe+model+pruning --audit
    python benchmarks/tuning_quality.py --quick     # 1 trace x 1 profile, small grid, 2 seeds
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from migpolicy.context import build_context
from migpolicy.errors import InputError
from migpolicy.hookspecs import hookimpl
from migpolicy.plugin_manager import get_plugin_manager
from migpolicy.registries import declared_parameters
from migpolicy.replay import ReplayOptions
from migpolicy.traces import Trace, generated_trace, open_trace, trace_generators, write_native
from migpolicy.tuning.study import Tuner, open_study

#: Traces: generator → its options; every one 100,000 events over 1,024 pages, 1 us apart.
TRACES = {"phases": {}, "zipf": {}, "tenants": {}}
EVENTS, PAGES, INTERVAL_NS, TRACE_SEED = 100_000, 1024, 1000, 1
PROFILES = ("dram-cxl", "gh200")
#: A quarter of the CPUs busy with other work: asynchronous migration takes CPU time from the
#: program (with idle CPUs it is free, and engine, workers and batch size would not matter).
SYSTEM_LOAD = 0.25
OPTIONS = ReplayOptions(fast="25%", epoch_ns=1_000_000)
#: How close to the grid optimum counts as reached.
TOLERANCE = 0.02
TARGET_GRID_FRACTION, TARGET_RATIO = 0.05, 2.0
#: Arm → keyword arguments of ``Tuner`` and whether Optuna's pruner is off.
ARMS = {
    "random": ({"screening": False, "prefix_steps": 1}, True),
    "tpe": ({"screening": False, "prefix_steps": 1}, True),
    "tpe+model+pruning": ({}, False),
}
MODEL = "tpe+model+pruning"
#: The entries of ``Tuner.setup()`` a grid value depends on (not the trace's temporary path).
REPLAY_SETUP = ("objective", "fast", "epoch_ns", "initial", "max_events", "seed")
#: Outcomes of candidates that ``--audit`` replays in full afterwards.
AUDITED = ("screened", "pruned", "matched")


@dataclass(frozen=True)
class Grid:
    """The grid's axes: shared ones, engine settings, and each placement's constants."""

    placements: Mapping[str, Mapping[str, tuple]]
    engines: tuple[tuple[str, Mapping[str, Any]], ...]
    shared: Mapping[str, tuple] = field(default_factory=dict)

    def points(self) -> Iterator[dict[str, Any]]:
        """Every policy of the grid (only the parameters active in it)."""
        names = list(self.shared)
        for placement, constants in self.placements.items():
            keys = list(constants)
            for values in itertools.product(*(constants[k] for k in keys)):
                for engine, workers in self.engines:
                    for shared in itertools.product(*(self.shared[k] for k in names)):
                        yield {"placement": placement, **dict(zip(keys, values, strict=True)),
                               "engine": engine, **workers,
                               **dict(zip(names, shared, strict=True))}

    def axes(self) -> dict[str, list]:
        """Parameter → every value the grid gives it (the region the tuner searches)."""
        values: dict[str, list] = {"placement": list(self.placements),
                                   "engine": list(dict.fromkeys(e for e, _ in self.engines))}
        for source in (*self.placements.values(), *(w for _, w in self.engines), self.shared):
            for name, given in source.items():
                given = given if isinstance(given, tuple) else (given,)
                values.setdefault(name, [])
                values[name] += [v for v in given if v not in values[name]]
        return values


FULL_GRID = Grid(
    placements={"none": {},
                "numab": {"numab.hot_threshold_ms": (1.0, 10.0, 100.0, 1000.0),
                          "numab.scan_period_ms": (10.0, 100.0, 1000.0)},
                "hist": {"hist.hot_fill": (0.5, 0.7, 0.9),
                         "hist.half_life_ms": (1.0, 10.0, 100.0)},
                "damos": {"damos.hot_min_pct": (10.0, 50.0, 90.0)}},
    engines=(("cpu", {}), *(("mt", {"mt.threads": n}) for n in (4, 16, 64)),
             *(("dma", {"dma.channels": n}) for n in (2, 8))),
    shared={"placement.demotion": ("none", "watermark"), "batch.max_folios": (16, 128, 1024)})
QUICK_GRID = Grid(
    placements={"none": {}, "numab": {"numab.hot_threshold_ms": (1.0, 100.0)},
                "hist": {"hist.hot_fill": (0.5, 0.9)}},
    engines=(("cpu", {}), ("mt", {"mt.threads": 16})),
    shared={"placement.demotion": ("none", "watermark"), "batch.max_folios": (16, 1024)})


class Narrow:
    """Plugin narrowing the search space to the grid's region (hook ``migpolicy_search_space``)."""

    def __init__(self, axes: Mapping[str, list]) -> None:
        self.axes = axes

    @hookimpl
    def migpolicy_search_space(self, space):
        narrowed = {}
        for name, values in self.axes.items():
            dist = space[name]
            if isinstance(dist, CategoricalDistribution):
                narrowed[name] = CategoricalDistribution(values)
            elif isinstance(dist, IntDistribution):
                narrowed[name] = IntDistribution(min(values), max(values), log=dist.log)
            else:
                narrowed[name] = FloatDistribution(min(values), max(values), log=dist.log)
        return narrowed


def make_tuner(trace, hw: str, grid: Grid, **kwargs: Any) -> Tuner:
    """A tuner over the grid's region: other tunables fixed at their defaults on ``hw``."""
    pm = get_plugin_manager(entry_points=False)
    axes = grid.axes()
    pm.register(Narrow(axes), name="tuning-quality-grid")
    defaults = build_context(pm=pm, hw=hw, params={}).params
    fixed = {p.name: defaults[p.name] for p in declared_parameters(pm)
             if p.tunable and p.name not in axes}
    fixed["system.load"] = SYSTEM_LOAD
    return Tuner(pm, hw, [trace], fixed=fixed, options=OPTIONS, **kwargs)


def _key(point: Mapping[str, Any]) -> str:
    return json.dumps(point, sort_keys=True)


class Cache:
    """Grid values per trace x profile in one JSON file, written whole (temp file, rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, dict[str, Any]] = {}
        if path.exists():
            try:
                self.data = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise SystemExit(f"{path}: cannot read the grid cache ({exc}); expected the "
                                 "JSON this benchmark writes: delete it or pass another "
                                 "--cache") from None
            if not isinstance(self.data, dict):
                raise SystemExit(f"{path}: the grid cache is not a JSON object; delete it or "
                                 "pass another --cache")

    def section(self, name: str) -> dict[str, Any]:
        return self.data.setdefault(name, {})

    def drop(self, name: str) -> None:
        self.data.pop(name, None)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            json.dump(self.data, handle)
        os.replace(tmp, self.path)


def section_name(trace_name: str, tuner: Tuner) -> str:
    """What a cached grid value depends on: trace, profile, plugins, fixed values, options."""
    setup = {"trace": [trace_name, EVENTS, PAGES, INTERVAL_NS, TRACE_SEED],
             "profile": tuner.space.profile, "plugins": tuner.space.plugins,
             "fixed": sorted(tuner.space.fixed.items(), key=str),
             "options": {k: v for k, v in tuner.setup().items() if k in REPLAY_SETUP}}
    digest = hashlib.sha256(json.dumps(setup, sort_keys=True, default=str).encode())
    return f"{trace_name}/{tuner.space.profile}/{digest.hexdigest()[:12]}"


def evaluate_grid(tuner: Tuner, points: list[dict], cache: Cache, name: str,
                  progress: Progress, label: str) -> dict[str, float]:
    """Every grid point's objective (``inf`` where the policy is refused), cached."""
    values = cache.section(name)
    if values:  # the cache holds this combination: check it still replays to the same value
        best = min(values, key=values.get)
        again = tuner.evaluate(tuner.params(json.loads(best))).app_time_s
        if not math.isclose(again, values[best], rel_tol=1e-9):
            progress.console.print(f"{label}: cached grid is stale (optimum replays to "
                                   f"{again:.6g}, cached {values[best]:.6g}); replaying again")
            cache.drop(name)
            values = cache.section(name)
    todo = [p for p in points if _key(p) not in values]
    task = progress.add_task(f"grid {label}", total=len(points), completed=len(points) - len(todo))
    last_save = time.monotonic()
    for point in todo:
        try:
            values[_key(point)] = tuner.evaluate(tuner.params(point)).app_time_s
        except InputError:
            values[_key(point)] = math.inf
        progress.advance(task)
        if time.monotonic() - last_save > 30:
            cache.save()
            last_save = time.monotonic()
    cache.save()
    progress.remove_task(task)
    return {_key(p): values[_key(p)] for p in points}


def run_arm(trace, hw: str, grid: Grid, arm: str, seed: int, target: float,
            budget: int, audit: bool = False) -> dict[str, Any]:
    """One tuner run: full replays and replay-equivalents until within ``target``.

    ``audit`` replays every screened-out, pruned and matched candidate in full
    afterwards and counts those that were within ``target``: the decisions that
    cost the run its answer.
    """
    kwargs, no_pruner = ARMS[arm]
    tuner = make_tuner(trace, hw, grid, seed=seed, **kwargs)
    sampler = (optuna.samplers.RandomSampler(seed=seed) if arm == "random"
               else tuner.sampler(seed))
    study = open_study(tuner, f"{arm}-{seed}", None, sampler=sampler,
                       pruner=optuna.pruners.NopPruner() if no_pruner else None)
    events = trace.meta.events
    state = {"full": 0, "replayed": 0, "trials": 0, "reached": None, "best": math.inf,
             "outcomes": {}, "skipped": []}

    def after(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        outcome = trial.user_attrs.get("outcome", "?")
        state["trials"] += 1
        state["outcomes"][outcome] = state["outcomes"].get(outcome, 0) + 1
        state["full"] += outcome == "full"
        if outcome in AUDITED:
            state["skipped"].append((outcome, trial.params, trial.value))
        state["replayed"] += trial.user_attrs.get(
            "events_replayed", events if outcome == "full" else 0)
        if trial.state == optuna.trial.TrialState.COMPLETE and outcome == "full":
            state["best"] = min(state["best"], trial.value)
            if trial.value <= target and state["reached"] is None:
                state["reached"] = (state["full"], state["replayed"] / events)
        if state["reached"] is not None or state["full"] >= budget:
            study.stop()

    # screened-out and cached trials cost no replay; cap them too, so a run always ends
    tuner.optimize(study, n_trials=20 * budget, callbacks=[after])
    full, equiv = state["reached"] or (math.inf, math.inf)
    run = {"seed": seed, "full": full, "equiv": equiv, "best": state["best"],
           "trials": state["trials"], "full_replays": state["full"],
           "outcomes": state["outcomes"]}
    if audit:  # per outcome: skipped candidates within target, and better than the run's best
        run["skipped_within_target"] = dict.fromkeys(AUDITED, 0)
        run["skipped_better_than_best"] = dict.fromkeys(AUDITED, 0)
        run["matched_differently"] = run["matched_better"] = 0
        for outcome, params, presumed in state["skipped"]:
            # the same replay as the tuner's (reports at the same checkpoints), to the end
            value = tuner.evaluate(tuner.params(params), _FullReplay()).app_time_s
            run["skipped_within_target"][outcome] += value <= target
            run["skipped_better_than_best"][outcome] += value < state["best"]
            run["matched_differently"] += outcome == "matched" and value != presumed
            run["matched_better"] += outcome == "matched" and value < presumed
    return run


class _FullReplay:
    """Stands in for an Optuna trial in an audit replay: never pruned, nothing stored."""

    def report(self, value: float, step: int) -> None:
        pass

    def should_prune(self) -> bool:
        return False

    def set_user_attr(self, key: str, value: Any) -> None:
        pass


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.inf


def _fmt(value: float, budget: int) -> str:
    return f"not reached in {budget}" if math.isinf(value) else f"{value:g}"


def write_trace(name: str, directory: Path) -> Trace:
    """Generate trace ``name`` into a native file in ``directory`` and open it."""
    pm = get_plugin_manager(entry_points=False)
    trace = generated_trace(trace_generators(pm)[name], EVENTS, PAGES, TRACE_SEED,
                            {**TRACES[name], "interval_ns": INTERVAL_NS})
    path = directory / f"{name}.mpt"
    with open(path, "wb") as handle:
        write_native(trace, handle)
    return open_trace(path, pm)


def run_combo(trace_name: str, trace: Trace, hw: str, grid: Grid, arms: list[str], seeds: int,
              budget_fraction: float, cache: Cache, progress: Progress,
              audit: bool = False) -> dict[str, Any]:
    """Grid optimum and the runs of ``arms`` on one trace x profile."""
    label = f"{trace_name} x {hw}"
    tuner = make_tuner(trace, hw, grid)
    points = list(grid.points())
    values = evaluate_grid(tuner, points, cache, section_name(trace_name, tuner), progress,
                           label)
    best_key = min(values, key=values.get)
    optimum = values[best_key]
    target = optimum * (1 + TOLERANCE)
    budget = max(20, round(budget_fraction * len(points)))
    combo = {"trace": trace_name, "hw": hw, "grid_size": len(points), "budget": budget,
             "grid_optimum": optimum, "grid_optimum_params": json.loads(best_key),
             "within_tolerance": sum(v <= target for v in values.values()),
             "refused": sum(math.isinf(v) for v in values.values()),
             "baseline": tuner.baseline().app_time_s, "arms": {}}
    task = progress.add_task(f"tuner {label}", total=len(arms) * seeds)
    for arm in arms:
        runs = []
        for seed in range(seeds):
            runs.append(run_arm(trace, hw, grid, arm, seed, target, budget, audit))
            progress.advance(task)
        full, equiv = _median([r["full"] for r in runs]), _median([r["equiv"] for r in runs])
        combo["arms"][arm] = {"median_full": full, "median_equiv": equiv,
                              "median_full_vs_grid": full / len(points), "runs": runs}
    progress.remove_task(task)
    if MODEL in combo["arms"]:
        model = combo["arms"][MODEL]["median_full"]
        combo["model_within_target"] = model <= TARGET_GRID_FRACTION * len(points)
        if "tpe" in combo["arms"]:
            tpe = combo["arms"]["tpe"]["median_full"]
            both = math.isfinite(model) and math.isfinite(tpe)
            combo["tpe_vs_model_full"] = tpe / model if both else None
            combo["model_halves_tpe"] = math.isfinite(model) and tpe >= TARGET_RATIO * model
    return combo


def print_table(combos: list[dict], seeds: int) -> None:
    """The human-readable report."""
    print(f"Replays to within {TOLERANCE:.0%} of the grid optimum, median over {seeds} seeds "
          "(modelled application time; full replays / replay-equivalents)")
    for c in combos:
        print(f"\n{c['trace']} x {c['hw']}: grid {c['grid_size']} policies, optimum "
              f"{c['grid_optimum'] * 1e3:.3f} ms (kernel default {c['baseline'] * 1e3:.3f} ms), "
              f"{c['within_tolerance']} grid points within {TOLERANCE:.0%}; budget "
              f"{c['budget']} full replays per run")
        print("  optimum: " + ", ".join(f"{k}={v}" for k, v in c["grid_optimum_params"].items()))
        for arm, a in c["arms"].items():
            per_seed = " ".join("-" if math.isinf(r["full"]) else f"{r['full']:g}"
                                for r in a["runs"])
            vs = ("" if math.isinf(a["median_full"])
                  else f" = {a['median_full_vs_grid']:.1%} of the grid")
            print(f"  {arm:<18} full {_fmt(a['median_full'], c['budget']):>18}{vs:<20} "
                  f"equiv {_fmt(round(a['median_equiv'], 1), c['budget']):>18}  "
                  f"(seeds: {per_seed})")
            if any("skipped_within_target" in r for r in a["runs"]):
                wrong = {k: sum(r["skipped_within_target"][k] for r in a["runs"])
                         for k in AUDITED}
                total = {k: sum(r["outcomes"].get(k, 0) for r in a["runs"]) for k in wrong}
                better = {k: sum(r["skipped_better_than_best"][k] for r in a["runs"])
                          for k in wrong}
                print(f"  {'':<18} audit, within {TOLERANCE:.0%} of the grid optimum / better "
                      "than their run's best: " + "; ".join(
                          f"{k} {wrong[k]} / {better[k]} of {total[k]}" for k in AUDITED))
                print(f"  {'':<18} audit: of {total['matched']} matched candidates "
                      f"{sum(r['matched_differently'] for r in a['runs'])} ended differently "
                      f"from the trial they matched, "
                      f"{sum(r['matched_better'] for r in a['runs'])} better")
        if "tpe_vs_model_full" in c:
            ratio = c["tpe_vs_model_full"]
            print("  plain TPE / model+pruning (full replays): "
                  + (f"{ratio:.2f}x" if ratio is not None else "n/a (not both reached)")
                  + f" (target >= {TARGET_RATIO:g}x)")
        if "model_within_target" in c:
            print(f"  model+pruning within {TARGET_GRID_FRACTION:.0%} of the grid: "
                  f"{'yes' if c['model_within_target'] else 'no'}")
    totals = arm_totals(combos)
    if totals:
        print("\nsum over the traces x profiles of the medians (full replays / equiv): "
              + "; ".join(f"{arm} {t['full']:g} / {t['equiv']:.1f}" for arm, t in totals.items()))
        if "tpe" in totals and MODEL in totals and totals[MODEL]["full"] > 0:
            print(f"plain TPE / model+pruning over all: "
                  f"{totals['tpe']['full'] / totals[MODEL]['full']:.2f}x in full replays, "
                  f"{totals['tpe']['equiv'] / totals[MODEL]['equiv']:.2f}x in replay work")
    if any("model_within_target" in c for c in combos):
        met = sum(c.get("model_within_target", False) for c in combos)
        halved = sum(c.get("model_halves_tpe", False) for c in combos)
        print(f"\ntargets: model+pruning within {TARGET_GRID_FRACTION:.0%} of the grid on "
              f"{met} of {len(combos)}; plain TPE's full replays halved on {halved} of "
              f"{len(combos)}")


def arm_totals(combos: list[dict]) -> dict[str, dict[str, float]]:
    """Arm → the sums over the combinations of its median full replays and replay-equivalents
    (infinite where a median run did not reach the target)."""
    arms = dict.fromkeys(arm for c in combos for arm in c["arms"])
    return {arm: {"full": sum(c["arms"][arm]["median_full"] for c in combos),
                  "equiv": sum(c["arms"][arm]["median_equiv"] for c in combos)}
            for arm in arms if all(arm in c["arms"] for c in combos)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and math.isinf(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=None, help="seeds per arm (default 5)")
    parser.add_argument("--budget", type=float, default=None,
                        help="most full replays per run, as a fraction of the grid size "
                        "(default 0.1; --quick: 1)")
    parser.add_argument("--arm", action="append", choices=list(ARMS),
                        help="only this arm (repeatable)")
    parser.add_argument("--audit", action="store_true",
                        help="replay every screened-out, pruned and matched candidate in full "
                        "afterwards and count those within 2%% of the grid optimum")
    parser.add_argument("--grid-only", action="store_true",
                        help="only replay the grids (fills the cache) and print their optima")
    parser.add_argument("--trace", action="append", choices=list(TRACES),
                        help="only this trace (repeatable)")
    parser.add_argument("--hw", action="append", choices=list(PROFILES),
                        help="only this profile (repeatable)")
    parser.add_argument("--cache", type=Path,
                        default=Path(tempfile.gettempdir()) / "migpolicy-tuning-quality.json",
                        help="JSON file of grid values, reused by reruns")
    parser.add_argument("--quick", action="store_true",
                        help="1 trace x 1 profile, a 40-point grid, 2 seeds")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    traces = args.trace or (["phases"] if args.quick else list(TRACES))
    profiles = args.hw or (["dram-cxl"] if args.quick else list(PROFILES))
    seeds = args.seeds or (2 if args.quick else 5)
    budget = args.budget or (1.0 if args.quick else 0.1)
    grid = QUICK_GRID if args.quick else FULL_GRID
    arms = [] if args.grid_only else args.arm or list(ARMS)
    cache = Cache(args.cache)
    start = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with (Progress(*columns, transient=True, disable=not sys.stderr.isatty()) as progress,
          tempfile.TemporaryDirectory() as tmp):
        opened = {name: write_trace(name, Path(tmp)) for name in traces}
        combos = [run_combo(t, opened[t], hw, grid, arms, seeds, budget, cache, progress,
                            args.audit)
                  for t in traces for hw in profiles]
    if args.json:
        print(json.dumps(_jsonable({
            "tolerance": TOLERANCE, "seeds": seeds, "events": EVENTS, "pages": PAGES,
            "interval_ns": INTERVAL_NS, "fast": OPTIONS.fast, "epoch_ns": OPTIONS.epoch_ns,
            "targets": {"grid_fraction": TARGET_GRID_FRACTION, "tpe_vs_model": TARGET_RATIO},
            "wall_s": time.perf_counter() - start, "totals": arm_totals(combos),
            "combos": combos}), indent=2))
        return
    print_table(combos, seeds)
    print(f"\nwall {time.perf_counter() - start:.0f} s; grid cache {args.cache}")


if __name__ == "__main__":
    main()

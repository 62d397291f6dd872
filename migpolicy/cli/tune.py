"""``migpolicy tune``: search the declared policy space on replayed traces with Optuna."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click

from migpolicy.cli.output import console, echo_json, err_console, parse_assignments
from migpolicy.cli.replay import REPLAY_PROFILE

__all__ = ["tune_command"]


@contextlib.contextmanager
def _progress(total: int | None, enabled: bool) -> Iterator[Callable[..., None] | None]:
    """A rich progress bar on stderr of the run's trials (all workers), or ``None``.

    Yields ``show(done, best)``: trials of the run done so far, best value of the study.
    """
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("tuning"), BarColumn(), MofNCompleteColumn(), TextColumn("trials"),
               TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task("", total=total)

        def show(done: int, best: float | None) -> None:
            progress.update(task, completed=done,
                            description=f"best {best:.6g}" if best is not None else "")

        yield show


@click.command("tune")
@click.argument("trace_paths", metavar="TRACE...", nargs=-1, required=True)
@click.option("--hw", "hw_name", default=REPLAY_PROFILE, show_default=True, metavar="PROFILE",
              help="Hardware profile name or YAML file.")
@click.option("--policy", "policy_file", default=None, metavar="YAML",
              help="Base policy file: its values are fixed and leave the search space.")
@click.option("--param", "param_items", multiple=True, metavar="KEY=VALUE",
              help="Fix a parameter (repeatable; overrides --policy), e.g. --param engine=mt.")
@click.option("--trials", default=20, show_default=True, type=click.IntRange(min=1),
              help="Trials of this run, counted across all its workers (every --jobs process, "
                   "every machine running the same command); added to the study's earlier "
                   "ones, or finishing an interrupted run of the same size.")
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(min=1),
              help="Worker processes on this machine sharing the run.")
@click.option("--heartbeat", "heartbeat_s", default=10, show_default=True,
              type=click.IntRange(min=1), metavar="SECONDS",
              help="Heartbeat of a running trial; a trial silent for twice this (its worker "
                   "died) is failed and run again by another worker.")
@click.option("--timeout", default=None, type=click.FloatRange(min=0, min_open=True),
              metavar="SECONDS", help="Stop starting trials after this many seconds.")
@click.option("--objective", default="app_time", show_default=True,
              type=click.Choice(["app_time", "migration_cpu", "multi"]),
              help="Minimise the modelled application time, the migration CPU time (both "
                   "summed over the traces), or both at once (multi: a Pareto front).")
@click.option("--cpu-budget", default=None, type=click.FloatRange(min=0), metavar="RATIO",
              help="Constraint: migration CPU seconds per second of application time at most "
                   "RATIO (e.g. 0.05); the best trial is the best within it.")
@click.option("--screen/--no-screen", default=True, show_default=True,
              help="Skip candidates a model learned from the finished trials (a random forest) "
                   "is confident are worse than their median.")
@click.option("--match/--no-match", default=True, show_default=True,
              help="Stop a replay that has tied a fully replayed trial's figures, to the last "
                   "bit, at every prefix report through 5/8 of the evaluation, and give it that "
                   "trial's values (outcome matched); --no-match replays such candidates to "
                   "the end.")
@click.option("--prefix-steps", default=8, show_default=True, type=click.IntRange(min=1),
              metavar="K", help="Report each replay's objective to the pruner K times per trace "
                                "(after 1/K, 2/K ... of it; also the points a tie with a "
                                "finished trial is matched at); 1: after each trace only.")
@click.option("--storage", default=None, metavar="URL",
              help="Optuna storage URL (sqlite:///f.db, postgresql://...) [default: "
                   "sqlite:///migpolicy-studies.db in the working directory].")
@click.option("--study", "study_name", default="migpolicy", show_default=True, metavar="NAME",
              help="Study to create, or to continue when it exists.")
@click.option("--seed", default=None, type=int, help="Seed of the sampler (TPE).")
@click.option("--fast", default="25%", show_default=True, metavar="SIZE|PCT",
              help="Fast-tier size, as for replay.")
@click.option("--epoch", default=None, metavar="DURATION", help="Epoch, as for replay.")
@click.option("--export", "export_path", default=None, metavar="BEST.yaml",
              help="Write the best policy as a YAML that `migpolicy replay --policy` takes.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
@click.option("--report", "report_dir", default=None, metavar="DIR",
              help="Also write DIR/index.html (optimization history, parameter importances, "
                   "Pareto front, best trials) and DIR/tune.json, atomically.")
@click.pass_context
def tune_command(ctx: click.Context, trace_paths: tuple[str, ...], hw_name: str,
                 policy_file: str | None, param_items: tuple[str, ...], trials: int, jobs: int,
                 heartbeat_s: int, timeout: float | None, objective: str, cpu_budget: float | None,
                 screen: bool, match: bool, prefix_steps: int, storage: str | None,
                 study_name: str,
                 seed: int | None, fast: str, epoch: str | None, export_path: str | None,
                 as_json: bool, report_dir: str | None) -> None:
    """Find the policy that minimises the objective on TRACE... with Optuna (TPE).

    Each trial picks a policy from the space the plugins declare (placement
    policy and its parameters, engine, workers, batch size ...) and replays
    every trace under it, summing the objective. Four things save replays:
    a pruner stops a candidate that trails the best one at the same point of
    a trace by more than a margin (30% over the first quarter of the trace,
    narrowing to 8% over its last quarter; --prefix-steps), a random forest
    trained on the finished trials skips candidates it is sure are poor
    (--screen), a candidate equal to a finished one reuses its result, and
    one whose replay has equalled a finished trial's to the last bit at every
    prefix point through 5/8 of the evaluation takes that trial's result (its
    other values made no difference so far; --match). Every trial records its
    outcome: full, pruned, screened, cached, matched or failed. The kernel
    default (numab+watermark, default parameters) is the first trial of a new
    study and the baseline of `improvement_pct`. Traces
    that fit 1 GiB together are read into memory once; larger ones stream.
    Trials are stored as they complete: run the command again (or after
    Ctrl-C) to continue the study. Figures are modelled, as for replay.

    Workers: --jobs N runs N processes here; the same command with the same
    --storage postgresql://... and --study on other machines joins the run.
    --trials is the run's total over all workers; a killed worker's trial is
    failed by the heartbeat and run again by another. optuna-dashboard URL
    shows the study (pip install 'migpolicy[dashboard]').

    \b
    Examples:
      migpolicy trace gen phases --out phases.mpt --events 200K --pages 1024
      migpolicy tune phases.mpt --trials 30 --export best.yaml
      migpolicy replay phases.mpt --policy best.yaml
      migpolicy tune a.mpt b.mpt --objective migration_cpu --param engine=mt --json
      migpolicy tune phases.mpt --objective multi --cpu-budget 0.05 --trials 60
      migpolicy tune phases.mpt --storage sqlite:///runs.db --study cxl --trials 50
      migpolicy tune phases.mpt --trials 40 --report tuning-report/
      migpolicy tune phases.mpt --jobs 2 --trials 100
      migpolicy tune phases.mpt --storage postgresql://tuner@db.lab/studies --study cxl \\
          --trials 400 --jobs 8        # the same line on every machine
    """
    from migpolicy.cli.trace import parse_duration
    from migpolicy.context import build_context
    from migpolicy.files import check_output
    from migpolicy.plugin_manager import get_plugin_manager
    from migpolicy.registries import declared_parameters
    from migpolicy.replay import ReplayOptions
    from migpolicy.replay.policyfile import load_policy
    from migpolicy.traces import open_trace
    from migpolicy.tuning.storage import dashboard_command, open_storage, safe_url
    from migpolicy.tuning.study import DEFAULT_STORAGE, Tuner, open_study, summary
    from migpolicy.tuning.workers import run_progress, run_workers, start_run, work

    pm = get_plugin_manager(ctx.find_root().obj["plugins"])
    given: dict[str, Any] = {}
    if policy_file:
        given.update(load_policy(policy_file, declared_parameters(pm)))
    given.update(parse_assignments(param_items))
    resolved = build_context(pm=pm, hw=hw_name, params=given).params  # checks every value
    fixed = {key: resolved[key] for key in given}
    if export_path is not None:
        check_output(export_path, "best policy")
    if report_dir is not None:
        from migpolicy.tuning.report import check_report_dir

        check_report_dir(report_dir)
    # SQLAlchemy logs a cursor it could not close when Ctrl-C lands mid-query: not for the user
    logging.getLogger("sqlalchemy.pool").addHandler(logging.NullHandler())
    storage = storage or DEFAULT_STORAGE
    # a dead database is said before any work; one worker alone on SQLite needs no heartbeat
    alone = jobs == 1 and storage.startswith("sqlite")
    backend = open_storage(storage, None if alone else heartbeat_s)
    ctx.call_on_close(backend.close)
    traces = [open_trace(path, pm) for path in trace_paths]
    # --jobs workers keep the CPUs busy already: no thread counting epochs ahead in each
    options = ReplayOptions(fast=fast, epoch_ns=parse_duration(epoch) if epoch else None,
                            ahead=False if jobs > 1 else None)
    tuner = Tuner(pm=pm, hw=hw_name, traces=traces, fixed=fixed, objective=objective,
                  options=options, cpu_budget=cpu_budget, screening=screen, matching=match,
                  prefix_steps=prefix_steps, seed=seed or 0)
    baseline = tuner.baseline()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = open_study(tuner, study_name, backend, sampler=tuner.sampler(seed))
    run = start_run(backend, study, trials)
    with _progress(trials, not as_json and sys.stderr.isatty()) as show:
        if jobs > 1:
            run_workers(jobs, tuner, backend, study, run, seed=seed, timeout=timeout,
                        on_progress=show)
        else:
            work(tuner, study, backend, timeout=timeout,
                 callbacks=[lambda s, _: show(*run_progress(s, run))] if show else None)
    data = {**summary(study, tuner, baseline), "objective": objective, "study": study_name,
            "storage": safe_url(storage), "jobs": jobs,
            "run": {"first_trial": run.first, "trials": trials,
                    "done": run_progress(study, run)[0]},
            "dashboard": dashboard_command(storage),
            "notes": ["figures are modelled by the replay (see `migpolicy replay --help`)"]}
    if export_path is not None:
        _export(export_path, tuner.params(data["best_params"]))
        data["export"] = export_path
    if report_dir is not None:
        from migpolicy.tuning.report import write_report

        data["report"] = str(write_report(report_dir, study, data) / "index.html")
    if as_json:
        echo_json(data)
        return
    _print(data)


def _export(path: str, params: dict[str, Any]) -> None:
    """Write ``params`` as a flat YAML mapping, atomically."""
    import yaml

    from migpolicy.files import atomic_write_text

    text = "# best policy found by migpolicy tune; use: migpolicy replay --policy FILE\n"
    atomic_write_text(path, text + yaml.safe_dump(dict(sorted(params.items())),
                                                  sort_keys=False))


def _print(data: dict[str, Any]) -> None:
    console.print(f"study {data['study']} ({data['storage']}): {data['trials']} trials: "
                  f"{data['replays_full']} replayed in full, {data['replays_pruned']} pruned, "
                  f"{data['screened_out']} screened out, {data['replays_cached']} cached, "
                  f"{data['replays_matched']} matched, "
                  f"{data['trials_failed']} failed ({data['replay_equivalents']:.1f} full "
                  "replays of work)")
    from migpolicy.tuning.study import METRICS

    names = METRICS[data["objective"]]
    values = ", ".join(f"{n} {v:.6g}" for n, v in zip(names, data["baseline_values"],
                                                        strict=True))
    console.print(f"baseline (kernel default): {values}")
    values = ", ".join(f"{n} {v:.6g}" for n, v in zip(names, data["best_values"], strict=True))
    pct = data["improvement_pct"]
    console.print(f"best (trial {data['best_trial']}): {values} ({abs(pct):.1f}% "
                  f"{'better' if pct >= 0 else 'worse'} {names[0]} than the kernel default)")
    for key, value in sorted(data["best_params"].items()):
        console.print(f"  {key}: {value}")
    if "cpu_budget" in data:
        console.print(f"CPU budget {data['cpu_budget']:g} s per application second: "
                      f"{data['feasible_trials']} completed trials within it")
    if "pareto_front" in data:
        console.print(f"Pareto front ({len(data['pareto_front'])} trials: app_time s, "
                      "migration_cpu s):")
        for point in data["pareto_front"]:
            console.print(f"  trial {point['trial']}: {point['values'][0]:.6g}, "
                          f"{point['values'][1]:.6g}")
    if "export" in data:
        console.print(f"best policy: {data['export']}")
    if "report" in data:
        console.print(f"report: {data['report']}")
    console.print(f"see the study: {data['dashboard']}", soft_wrap=True)
    console.print("figures are modelled by the replay (see `migpolicy replay --help`)")

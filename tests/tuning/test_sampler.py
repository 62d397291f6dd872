"""The tuner's sampler: TPE's proposals, with one read of the study per trial."""

from __future__ import annotations

import optuna

from migpolicy.tuning.sampler import SnapshotTPESampler

optuna.logging.set_verbosity(optuna.logging.ERROR)

NAMES = ("a", "b", "c", "d", "e")


def objective(trial: optuna.Trial) -> float:
    """A conditional space, as the tuner's: TPE samples such parameters one at a time."""
    kind = trial.suggest_categorical("kind", ["x", "y", "z"])
    values = [trial.suggest_float(f"{kind}.{name}", -3.0, 3.0) for name in NAMES]
    return sum((v - 1.0) ** 2 for v in values) + (kind != "y")


def proposals(sampler: optuna.samplers.BaseSampler, storage) -> list[dict]:
    study = optuna.create_study(sampler=sampler, storage=storage)
    study.optimize(objective, n_trials=25)
    return [t.params for t in study.trials]


def test_one_worker_gets_exactly_the_proposals_of_optunas_tpe(tmp_path):
    """Alone on a study, nothing changes between a trial's reads: same seed, same candidates."""
    ours = proposals(SnapshotTPESampler(seed=3), f"sqlite:///{tmp_path / 'ours.db'}")
    theirs = proposals(optuna.samplers.TPESampler(seed=3), f"sqlite:///{tmp_path / 'tpe.db'}")
    assert ours == theirs


class CountingStorage(optuna.storages.RDBStorage):
    """An RDB storage that counts the reads of a study's trials."""

    reads = 0

    def _get_trials(self, *args, **kwargs):
        CountingStorage.reads += 1
        return super()._get_trials(*args, **kwargs)


def reads_per_trial(sampler: optuna.samplers.BaseSampler, url: str) -> int:
    study = optuna.create_study(sampler=sampler, storage=CountingStorage(url))
    study.optimize(objective, n_trials=15)  # past TPE's 10 random start-up trials
    CountingStorage.reads = 0
    study.optimize(objective, n_trials=1)
    return CountingStorage.reads


def test_a_trial_reads_the_study_once_not_once_per_parameter(tmp_path):
    ours = reads_per_trial(SnapshotTPESampler(seed=0), f"sqlite:///{tmp_path / 'ours.db'}")
    theirs = reads_per_trial(optuna.samplers.TPESampler(seed=0),
                             f"sqlite:///{tmp_path / 'tpe.db'}")
    assert theirs >= len(NAMES)  # the constant liar reads again for every parameter
    assert ours <= theirs - len(NAMES) + 1

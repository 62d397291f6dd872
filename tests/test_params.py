"""Policy parameters: defaults, coercion, bad keys and values, and the Optuna search space."""

from __future__ import annotations

import math

import optuna
import pytest

from migpolicy.context import declared_parameters
from migpolicy.errors import InputError
from migpolicy.params import Parameter, resolve, suggest

DECLARED = (
    Parameter("mt.threads", 8, "int", "threads", low=1, high=64),
    Parameter("mt.placement", "spread", "choice", "placement", choices=("spread", "fill")),
    Parameter("auto.dma_load", 0.75, "float", "load", low=0.0, high=1.0),
    Parameter("auto.min_batch_bytes", 4096, "int", "bytes", low=4096, high=1 << 26, log=True),
    Parameter("gpu.pinned", True, "bool", "pinned", tunable=False),
    Parameter("engine", "cpu", "str", "engine", tunable=False),
)


def test_defaults_when_nothing_is_given() -> None:
    assert resolve(DECLARED, {}) == {p.name: p.default for p in DECLARED}


def test_given_values_override_and_are_coerced() -> None:
    values = resolve(DECLARED, {"mt.threads": "16", "auto.dma_load": "0.5",
                                "gpu.pinned": "no", "mt.placement": "fill", "engine": "dma"})
    assert values["mt.threads"] == 16 and isinstance(values["mt.threads"], int)
    assert values["auto.dma_load"] == 0.5 and isinstance(values["auto.dma_load"], float)
    assert values["gpu.pinned"] is False
    assert values["mt.placement"] == "fill"
    assert values["engine"] == "dma"
    assert values["auto.min_batch_bytes"] == 4096


def test_integral_float_is_an_int() -> None:
    assert resolve(DECLARED, {"mt.threads": 4.0})["mt.threads"] == 4


@pytest.mark.parametrize("text", ["1", "true", "True", "YES", "on", " On "])
def test_bool_true_spellings(text: str) -> None:
    assert resolve(DECLARED, {"gpu.pinned": text})["gpu.pinned"] is True


@pytest.mark.parametrize("text", ["0", "false", "FALSE", "no", "off", False, 0])
def test_bool_false_spellings(text: object) -> None:
    assert resolve(DECLARED, {"gpu.pinned": text})["gpu.pinned"] is False


@pytest.mark.parametrize("text", ["maybe", "", "2", "tru"])
def test_bool_rejects_other_text(text: str) -> None:
    with pytest.raises(InputError, match=r"gpu\.pinned expects true or false"):
        resolve(DECLARED, {"gpu.pinned": text})


def test_unknown_key_suggests_the_close_one() -> None:
    with pytest.raises(InputError) as info:
        resolve(DECLARED, {"mt.thread": 4}, where="policy.yaml")
    message = str(info.value)
    assert message.startswith("policy.yaml: unknown parameter 'mt.thread'")
    assert "did you mean mt.threads" in message


def test_unknown_key_without_close_match_has_no_hint() -> None:
    with pytest.raises(InputError) as info:
        resolve(DECLARED, {"zzz.qqq": 1})
    assert "unknown parameter 'zzz.qqq'" in str(info.value)
    assert "did you mean" not in str(info.value)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("mt.threads", 0, r"mt\.threads expects an integer in \[1, 64\], got 0"),
        ("mt.threads", 65, r"expects an integer in \[1, 64\], got 65"),
        ("mt.threads", "eight", r"expects an integer in \[1, 64\], got 'eight'"),
        ("mt.threads", 2.5, r"expects an integer in \[1, 64\], got 2\.5"),
        ("mt.threads", None, r"expects an integer"),
        ("auto.dma_load", 1.5, r"expects a number in \[0, 1\], got 1\.5"),
        ("auto.dma_load", "-0.1", r"expects a number in \[0, 1\]"),
        ("auto.dma_load", "nan", r"expects a number in \[0, 1\]"),
        ("auto.dma_load", "high", r"expects a number"),
        ("mt.placement", "zigzag", r"mt\.placement expects one of spread, fill, got 'zigzag'"),
    ],
)
def test_bad_values_name_parameter_and_range(key: str, value: object, expected: str) -> None:
    with pytest.raises(InputError, match=expected) as info:
        resolve(DECLARED, {key: value}, where="--param")
    assert str(info.value).startswith("--param: ")
    assert "\n" not in str(info.value)


def test_one_sided_bound_is_checked_and_described() -> None:
    at_least_one = Parameter("x.n", 1, "int", "n", low=1)
    assert resolve([at_least_one], {"x.n": 10**6})["x.n"] == 10**6
    with pytest.raises(InputError, match=r"x\.n expects an integer >= 1, got 0"):
        resolve([at_least_one], {"x.n": 0})
    at_most_one = Parameter("x.f", 0.5, "float", "f", high=1.0)
    with pytest.raises(InputError, match=r"x\.f expects a number <= 1, got 2"):
        resolve([at_most_one], {"x.f": 2})


def test_unbounded_float_accepts_anything_numeric() -> None:
    free = Parameter("x.f", 0.0, "float", "f")
    assert resolve([free], {"x.f": "-1e9"})["x.f"] == -1e9


def test_suggest_with_a_real_optuna_trial() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        trial = study.ask()
        values = suggest(trial, DECLARED, {"mt.threads": (2, 4)})
        assert set(values) == {p.name for p in DECLARED if p.tunable}
        assert 2 <= values["mt.threads"] <= 4 and isinstance(values["mt.threads"], int)
        assert values["mt.placement"] in ("spread", "fill")
        assert 0.0 <= values["auto.dma_load"] <= 1.0
        assert 4096 <= values["auto.min_batch_bytes"] <= 1 << 26
        assert trial.params == values
        # every suggestion is itself a valid setting
        resolve(DECLARED, values)
        study.tell(trial, 0.0)
    distributions = study.trials[0].distributions
    assert distributions["auto.min_batch_bytes"].log is True
    assert distributions["auto.dma_load"].log is False


def test_suggest_asks_bools_as_categorical() -> None:
    flag = Parameter("x.flag", False, "bool", "flag")
    trial = optuna.create_study().ask()
    assert suggest(trial, [flag])["x.flag"] in (False, True)


def test_every_builtin_parameter_is_well_formed(pm) -> None:
    declared = declared_parameters(pm)
    names = [p.name for p in declared]
    assert len(names) == len(set(names)), "two plugins declare the same parameter"
    for p in declared:
        assert p.kind in ("int", "float", "bool", "choice", "str"), p
        assert p.help, p
        # the default passes the parameter's own validation
        assert p.coerce(p.default) == p.default, p
        if p.kind in ("int", "float") and p.tunable:
            assert p.low is not None and p.high is not None and p.low <= p.high, p
            assert math.isfinite(p.low) and math.isfinite(p.high), p
        if p.kind == "choice":
            assert p.default in p.choices, p


def test_builtin_search_space_is_valid(pm) -> None:
    trial = optuna.create_study().ask()
    declared = declared_parameters(pm)
    values = suggest(trial, declared)
    assert values
    resolve(declared, values)

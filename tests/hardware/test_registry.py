"""Profile lookup: plugin answers checked at the boundary, one answer for list and show."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from migpolicy.errors import ConfigError, InputError, PluginError
from migpolicy.hardware.registry import find_profile, list_profiles
from migpolicy.plugin_manager import get_plugin_manager


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Factory: write a plugin whose migpolicy_hardware_profiles returns ``answer`` (source)."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name: str, answer: str) -> str:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(f"""
            from migpolicy.hookspecs import hookimpl

            @hookimpl
            def migpolicy_hardware_profiles():
                return {answer}
        """))
        return name

    yield write
    for name in [n for n in sys.modules if n.startswith("treg_")]:
        del sys.modules[name]


@pytest.mark.parametrize(("answer", "needle"), [
    ("42", "returned int 42 from hook migpolicy_hardware_profiles; expected a list of profile"),
    ("'a.yaml'", "returned str 'a.yaml' from hook"),
    ("[42]", "returned int 42 among the paths of hook migpolicy_hardware_profiles"),
    ("1 / 0", "raised ZeroDivisionError in hook migpolicy_hardware_profiles"),
])
def test_a_bad_answer_is_a_plugin_error_naming_plugin_and_hook(plugin_module, answer: str,
                                                               needle: str) -> None:
    pm = get_plugin_manager([plugin_module(f"treg_bad{abs(hash(answer))}", answer)],
                            entry_points=False)
    for call in (lambda: list_profiles(pm), lambda: find_profile(pm, "gh200")):
        with pytest.raises(PluginError, match=r"^plugin 'treg_bad") as caught:
            call()
        assert needle in str(caught.value)


def test_a_plugin_answering_none_registers_nothing(plugin_module) -> None:
    pm = get_plugin_manager([plugin_module("treg_none", "None")], entry_points=False)
    assert "gh200" in list_profiles(pm)


def test_the_profile_dir_shadows_a_shipped_name_in_list_and_show(profile_dir, pm,
                                                                  user_profile_dir: Path
                                                                  ) -> None:
    mine = profile_dir("gh200", lambda t: t.replace("NVIDIA Grace", "My Grace"),
                       filename="my-grace.yaml")
    (user_profile_dir / mine.name).write_text(mine.read_text())
    listed = list_profiles(pm)["gh200"]
    shown = find_profile(pm, "gh200")
    assert listed.path == shown.path == user_profile_dir / "my-grace.yaml"
    assert "My Grace" in shown.description


def test_a_broken_file_in_the_profile_dir_only_breaks_its_own_name(pm, user_profile_dir: Path
                                                                    ) -> None:
    (user_profile_dir / "broken.yaml").write_bytes(b"name: caf\xe9\n")
    assert find_profile(pm, "gh200").name == "gh200"
    with pytest.raises(ConfigError, match=r"broken.yaml:1: byte 0xe9"):
        find_profile(pm, "broken")
    with pytest.raises(ConfigError, match=r"broken.yaml:1"):
        list_profiles(pm)
    skipped = []
    assert "gh200" in list_profiles(pm, on_error=skipped.append)
    assert len(skipped) == 1 and "broken.yaml" in str(skipped[0])
    with pytest.raises(ConfigError, match=r"1 profile file\(s\) did not load"):
        find_profile(pm, "nope")


@pytest.mark.parametrize("option", ["--hw", "--base", "PROFILE"])
def test_errors_name_the_option_typed(pm, option: str) -> None:
    with pytest.raises(ConfigError, match=f"^{option} nope: unknown hardware profile"):
        find_profile(pm, "nope", option)
    with pytest.raises(InputError, match=f"^{option} nope.yaml: no such profile file"):
        find_profile(pm, "nope.yaml", option)
    with pytest.raises(InputError, match=f"^{option}: expected a profile name or YAML file, "
                                         "got an empty string"):
        find_profile(pm, "", option)


def test_hw_list_names_a_bad_file_and_goes_on(run_cli, user_profile_dir: Path) -> None:
    (user_profile_dir / "latin1.yaml").write_bytes(b"name: caf\xe9\n")
    code, out, err = run_cli("hw", "list", "--json")
    assert code == 0, err
    assert "gh200" in {row["name"] for row in json.loads(out)}
    assert err.strip() == (f"warning: skipped a profile that does not load: "
                           f"{user_profile_dir / 'latin1.yaml'}:1: byte 0xe9 at column 10 is not "
                           "UTF-8; expected a YAML file as UTF-8 text")

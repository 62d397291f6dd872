"""``migpolicy hw list`` and ``hw show`` through the installed console script."""

from __future__ import annotations

import json
import re

import pytest

SHIPPED = ("zen3-epyc-ptdma", "zen3-epyc-ptdma-6.14", "spr-dsa", "gh200", "dram-cxl", "local")
PROVENANCE_KINDS = {"measured", "fitted", "assumed"}


def test_list_json(run_cli) -> None:
    code, out, err = run_cli("hw", "list", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert isinstance(rows, list)
    names = [row["name"] for row in rows]
    assert set(SHIPPED) <= set(names)
    assert names == sorted(names)
    for row in rows:
        assert {"name", "description", "path", "provenance"} <= set(row)
        assert row["description"]
        assert set(row["provenance"]) <= PROVENANCE_KINDS
        assert sum(row["provenance"].values()) > 0


def test_list_text(run_cli) -> None:
    code, out, err = run_cli("hw", "list")
    assert code == 0, err
    for name in SHIPPED:
        assert name in out


@pytest.mark.parametrize("name", SHIPPED)
def test_show_json_has_provenance_for_every_parameter(run_cli, name: str) -> None:
    code, out, err = run_cli("hw", "show", name, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["name"] == name
    assert data["base_page"] > 0 and data["pmd_size"] % data["base_page"] == 0
    assert data["nodes"]
    provenance = data["provenance"]
    for pid, entry in provenance.items():
        assert entry["kind"] in PROVENANCE_KINDS, pid
    parameters = data["parameters"]
    assert parameters
    for path, entry in parameters.items():
        assert set(entry) >= {"value", "unit", "provenance"}, path
        assert isinstance(entry["value"], int | float)
        assert entry["provenance"] in provenance, path
    for section in ("stages.isolate", "stages.batch", "stages.remap", "memory", "engines.cpu",
                    "engines.mt"):
        assert any(path.startswith(section + ".") for path in parameters), section
    assert any(path.startswith("nodes.0.") for path in parameters)


def test_show_text_explains_each_provenance(run_cli) -> None:
    code, out, err = run_cli("hw", "show", "gh200")
    assert code == 0, err
    assert "gh200" in out
    assert "memory.link_gbps" in out
    for pid in ("nvidia-gh200", "hopper-ce"):
        assert re.search(rf"^{pid}: (assumed|fitted|measured)", out, flags=re.M), pid


def test_show_a_profile_file(run_cli, profile_dir) -> None:
    path = profile_dir("dram-cxl", filename="mine.yaml")
    code, out, err = run_cli("hw", "show", str(path), "--json")
    assert code == 0, err
    assert json.loads(out)["path"] == str(path)


def test_show_a_bad_profile_is_one_sentence(run_cli, profile_dir) -> None:
    path = profile_dir("gh200", lambda t: re.sub(r"^(\s+device_node:).*$", r"\1 7", t,
                                                 count=1, flags=re.M), filename="bad.yaml")
    code, out, err = run_cli("hw", "show", str(path))
    assert code == 1 and out == ""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert re.match(rf"^Error: {re.escape(str(path))}:\d+: engines\.gpu\.device_node: ",
                    lines[0]), err


def test_show_unknown_profile(run_cli) -> None:
    code, _, err = run_cli("hw", "show", "nope")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "nope" in lines[0] and "zen3-epyc-ptdma" in lines[0]


def test_user_profiles_override_shipped_ones(run_cli, user_profile_dir, profile_dir) -> None:
    copy = profile_dir("local")
    text = copy.read_text()
    described = re.sub(r"^description:.*\n(?:\s+.*\n)*", "description: calibrated here\n", text,
                       count=1, flags=re.M)
    (user_profile_dir / "local.yaml").write_text(described)
    code, out, err = run_cli("hw", "show", "local", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["description"] == "calibrated here"
    assert data["path"] == str(user_profile_dir / "local.yaml")


def test_show_prints_the_kernel_a_profile_holds_for(run_cli) -> None:
    code, out, err = run_cli("hw", "show", "zen3-epyc-ptdma")
    assert code == 0, err
    assert "kernel: 6.16.0-rc6 + RFC V3; offload driver: ptdma" in out
    code, out, err = run_cli("hw", "show", "zen3-epyc-ptdma-6.14", "--json")
    assert code == 0, err
    assert json.loads(out)["kernel"] == "6.14.0-rc7+ + RFC V2"
    code, out, err = run_cli("hw", "show", "gh200")
    assert "kernel: not tied to one" in out

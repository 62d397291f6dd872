"""``migpolicy hw learn``: its destinations are checked before training, as a user runs it."""

from __future__ import annotations

from migpolicy.hardware.tables import shipped_table


def test_an_output_whose_model_path_is_a_directory_fails_before_training(run_cli,
                                                                        tmp_path) -> None:
    (tmp_path / "zen3-learned.skops").mkdir()
    code, out, err = run_cli("hw", "learn", "--base", "zen3-epyc-ptdma", "--table",
                             shipped_table("2"), "--out", tmp_path / "zen3-learned.yaml",
                             "--json")
    assert code == 1 and out == "" and "Traceback" not in err
    assert err.strip() == (f"Error: {tmp_path / 'zen3-learned.skops'}: is a directory; "
                           "expected a file path for the learned model")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zen3-learned.skops"]


def test_an_unknown_base_is_named_as_base(run_cli, tmp_path) -> None:
    code, _, err = run_cli("hw", "learn", "--base", "nope", "--table", shipped_table("2"),
                           "--out", tmp_path / "x.yaml")
    assert code == 1
    assert err.startswith("Error: --base nope: unknown hardware profile")
    assert not list(tmp_path.iterdir())

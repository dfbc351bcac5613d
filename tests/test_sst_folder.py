"""Where ``attnflow reproduce sst2|sst5`` (and the SST tests) find the SST files: ``--data``,
else the environment variable ``ATTNFLOW_SST``."""

import pytest

from attnflow.cli import main
from attnflow.commands.reproduce import SST_ENV


def test_without_a_folder_the_error_names_the_option_and_the_variable(monkeypatch, capsys):
    monkeypatch.delenv(SST_ENV, raising=False)
    assert main(["reproduce", "sst2"]) == 2
    err = capsys.readouterr().err
    assert "--data DIR is required" in err and f"{SST_ENV}=DIR" in err


@pytest.mark.parametrize("by_option", [True, False])
def test_the_folder_comes_from_the_option_first_then_the_variable(tmp_path, monkeypatch,
                                                                   capsys, by_option):
    given, env = tmp_path / "given", tmp_path / "env"
    given.mkdir(), env.mkdir()
    monkeypatch.setenv(SST_ENV, str(env))
    argv = ["reproduce", "sst5", "--out", str(tmp_path / "out")]
    assert main(argv + (["--data", str(given)] if by_option else [])) == 2
    err = capsys.readouterr().err
    used = given if by_option else env
    assert f"{used}/stsa.fine.train" in err
    assert (f"(--data {given})" if by_option else f"({SST_ENV}={env})") in err


def test_the_variable_does_not_disturb_the_synthetic_experiments(tmp_path, monkeypatch,
                                                                  capsys):
    def reached(out, **kwargs):
        raise ValueError("the experiment started")
    monkeypatch.setenv(SST_ENV, str(tmp_path))
    monkeypatch.setattr("numeric.experiments.run_ablation", reached)
    assert main(["reproduce", "ablation", "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == "attnflow reproduce ablation: the experiment started"

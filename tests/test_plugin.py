"""Your own algorithm through ``--plugin``: experiments/a2c.py (the example of docs/plugins.md) registers A2C,
which then trains, sweeps and reports through the same loop and CLI as the built-in algorithms."""
import json
from pathlib import Path

import pytest

from jaxrl_policy.cli.main import main

A2C = str(Path(__file__).resolve().parents[1] / "experiments" / "a2c.py")


def test_a2c_plugin_sweeps_and_learns_cartpole(tmp_path, capsys):
    out = tmp_path / "sw"
    main(["sweep", "--plugin", A2C, "--algo", "a2c", "--env", "CartPole-v1", "--grid", "ent_coef=0,0.01",
          "--seeds", "2", "--total-timesteps", "50000", "--learning-rate", "1e-3", "--out", str(out), "--quiet",
          "--checkpoint-every", "0"])
    runs = json.loads((out / "summary.json").read_text())["runs"]
    assert [r["algo"] for r in runs] == ["a2c", "a2c"]
    assert [r["hparams"]["ent_coef"] for r in runs] == [0.0, 0.01]
    # a uniformly random CartPole policy averages ~22; A2C at lr 1e-3 passes 200 by 5·10⁴ steps
    assert max(r["final_return_iqm"] for r in runs) > 100, [r["final_return"] for r in runs]
    assert json.loads((out / "p000" / "config.json").read_text())["algo"] == "a2c"


@pytest.mark.parametrize("plugin,message", [
    ("no/such/file.py", "no such file"),
    ("jaxrl_policy.no_such_module", "failed to import: ModuleNotFoundError"),
])
def test_bad_plugin_is_refused(plugin, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--plugin", plugin, "--algo", "a2c"])
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_unregistered_algorithm_names_the_known_ones(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--algo", "a2c_unregistered"])
    assert e.value.code == 2 and "ppo" in capsys.readouterr().err

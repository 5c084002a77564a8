"""Presets (``--preset NAME``, ``algorithms/presets.py``): every entry resolves to a valid config, its values are
applied, the caller's overrides beat it, and a preset that does not apply exits 2 naming the ones that do."""
import dataclasses
import importlib.util

import pytest

from jaxrl_policy.algorithms import presets as P
from jaxrl_policy.cli.common import config_from_args, shared_configs, split_preset
from jaxrl_policy.cli.main import main
from jaxrl_policy.running.build import default_config

HAS_BRAX = importlib.util.find_spec("brax") is not None


def cases():
    """(preset, algo, env) for every env each entry names (one brax env for a pattern)."""
    out = []
    for name, p in P.PRESETS.items():
        for e in p.entries:
            for env in e.envs:
                out.append(pytest.param(name, e.algo, env.replace("*", "ant"), id=f"{name}-{e.algo}-{env}",
                                        marks=[pytest.mark.skipif(env.startswith("brax:") and not HAS_BRAX,
                                                                  reason="brax not installed")]))
    return out


@pytest.mark.parametrize("name, algo, env", cases())
def test_each_preset_resolves_to_a_valid_config_with_its_values(name, algo, env):
    cfg = default_config(algo, env, preset=name)  # validated on construction
    assert cfg.algo == algo and cfg.env_id == env
    entry = P.preset_entry(name, algo, env)
    for k, v in entry.values(env).items():
        want = v.fn({**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}}) \
            if isinstance(v, P.Derived) else (tuple(v) if isinstance(v, list) else v)
        assert getattr(cfg, k) == want, (name, algo, env, k)


@pytest.mark.parametrize("name", list(P.PRESETS))
def test_every_preset_names_its_source_and_its_published_results_belong_to_it(name):
    p = P.PRESETS[name]
    assert p.doc and p.entries
    for e in p.entries:
        assert e.source and "@" in e.source, e  # a repository and a commit (or version)
        assert e.differences, e
        for pub in e.published:
            assert e.matches(pub.env) and pub.steps > 0 and pub.metric, pub


def test_the_callers_overrides_beat_the_preset():
    cfg = default_config("ppo", "Breakout-MinAtar", preset="gymnax-blines", gamma=0.99, total_timesteps=1_000_000)
    assert cfg.gamma == 0.99 and cfg.total_timesteps == 1_000_000
    assert cfg.hidden_sizes == (256, 256) and cfg.num_minibatches == 8 and cfg.torso == "mlp"  # the rest: the preset
    assert default_config("ppo", "Breakout-MinAtar").hidden_sizes != (256, 256)  # without it: our default


def test_derived_values_follow_the_budget_unless_given():
    full = default_config("dqn", "Breakout-MinAtar", preset="minatar")
    assert full.total_timesteps == 5_000_000 and full.eps_decay_fraction == pytest.approx(105_000 / 5_000_000)
    short = default_config("dqn", "Breakout-MinAtar", preset="minatar", total_timesteps=1_000_000)
    assert short.eps_decay_fraction == pytest.approx(0.105)
    given = default_config("dqn", "Breakout-MinAtar", preset="minatar", total_timesteps=1_000_000,
                           eps_decay_fraction=0.5)
    assert given.eps_decay_fraction == 0.5


def test_a_preset_that_does_not_apply_names_the_ones_that_do():
    with pytest.raises(ValueError, match=r"preset 'gymnax-blines' has no entry for dqn on CartPole-v1.*"
                                         r"presets for dqn on CartPole-v1: cleanrl, purejaxrl"):
        default_config("dqn", "CartPole-v1", preset="gymnax-blines")
    with pytest.raises(ValueError, match=r"unknown preset 'gymnax-blinez' \(did you mean 'gymnax-blines'\?\).*"
                                         r"presets for ppo on Breakout-MinAtar: gymnax-blines"):
        default_config("ppo", "Breakout-MinAtar", preset="gymnax-blinez")
    with pytest.raises(ValueError, match="no preset covers vtrace on CartPole-v1"):
        default_config("vtrace", "CartPole-v1", preset="cleanrl")


def test_the_flag_is_applied_before_the_config_flags():
    cfg = config_from_args("ppo", "Breakout-MinAtar", ["--preset", "gymnax-blines", "--gamma", "0.99"], "t")
    assert cfg.gamma == 0.99 and cfg.num_minibatches == 8 and cfg.learning_rate == 5e-4
    cfg = config_from_args("ppo", "Breakout-MinAtar", ["--preset=gymnax-blines", "--no-clip-value-loss"], "t")
    assert cfg.clip_value_loss is False and cfg.hidden_sizes == (256, 256)
    # a derived preset value sees the budget given as a flag
    cfg = config_from_args("dqn", "Breakout-MinAtar", ["--total-timesteps", "1000000", "--preset", "minatar"], "t")
    assert cfg.eps_decay_fraction == pytest.approx(0.105) and cfg.batch_size == 32
    # compare / bench: the preset applies to every algorithm, shared overrides on top
    a, b = shared_configs(["ppo", "dqn"], "CartPole-v1", ["--preset", "cleanrl", "--gamma", "0.98"], "jaxrl-policy x",
                          {"total_timesteps": 100_000})
    assert (a.num_envs, b.num_envs, b.num_steps) == (4, 1, 10)
    assert a.gamma == b.gamma == 0.98 and a.total_timesteps == b.total_timesteps == 100_000
    assert split_preset(["--lr", "1", "--preset", "x", "--preset=y"]) == ("y", ["--lr", "1"])


@pytest.mark.parametrize("argv, needles", [
    (["train", "--algo", "dqn", "--env", "CartPole-v1", "--preset", "gymnax-blines"],
     ["preset 'gymnax-blines' has no entry for dqn on CartPole-v1", "cleanrl, purejaxrl"]),
    (["train", "--algo", "ppo", "--env", "CartPole-v1", "--preset", "nope"],
     ["unknown preset 'nope'", "presets for ppo on CartPole-v1: cleanrl, purejaxrl, rejax"]),
    (["compare", "--algos", "ppo", "vtrace", "--env", "CartPole-v1", "--preset", "cleanrl"],
     ["preset 'cleanrl' has no entry for vtrace on CartPole-v1"]),
    (["sweep", "--algo", "vtrace", "--env", "CartPole-v1", "--preset", "cleanrl", "--grid", "learning_rate=1e-3"],
     ["no preset covers vtrace on CartPole-v1"]),
    (["train", "--algo", "ppo", "--preset"], ["--preset needs a name"]),
])
def test_a_preset_that_does_not_apply_exits_2_before_compiling(argv, needles, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main([*argv, "--out", str(tmp_path / "run")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert all(n in err for n in needles), err
    assert not (tmp_path / "run").exists()


def test_preset_is_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--preset NAME" in out and all(name in out for name in P.PRESETS)
    with pytest.raises(SystemExit):  # the fields' help shows the preset's values as defaults
        main(["train", "--algo", "ppo", "--env", "Breakout-MinAtar", "--preset", "gymnax-blines", "--help"])
    assert "(default: 0.999)" in capsys.readouterr().out

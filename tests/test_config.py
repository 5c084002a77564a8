"""Config: purejaxrl-equal defaults, one ValueError naming every bad field, before compiling."""
import dataclasses

import pytest

from jaxrl_policy import config_from_dict, default_config
from jaxrl_policy.algorithms.dqn import DQNConfig
from jaxrl_policy.algorithms.ppo import PPOConfig
from jaxrl_policy.core.config import ConfigError


def test_ppo_defaults_match_purejaxrl():
    c = default_config("ppo", "CartPole-v1")
    assert (c.num_envs, c.num_steps, c.num_epochs, c.num_minibatches) == (4, 128, 4, 4)
    assert (c.learning_rate, c.anneal_lr, c.gamma, c.gae_lambda, c.clip_eps) == (2.5e-4, True, 0.99, 0.95, 0.2)
    assert (c.ent_coef, c.vf_coef, c.max_grad_norm, c.total_timesteps) == (0.01, 0.5, 0.5, 500_000)
    assert c.hidden_sizes == (64, 64) and c.activation == "tanh"


def test_dqn_defaults_match_purejaxrl():
    c = default_config("dqn", "CartPole-v1")
    assert (c.num_envs, c.buffer_size, c.batch_size, c.learning_rate) == (10, 10_000, 128, 2.5e-4)
    assert (c.target_update_interval, c.learning_starts, c.eps_start, c.eps_end) == (500, 10_000, 1.0, 0.05)
    assert c.gradient_steps_per_iteration == 1 and c.loss == "squared" and c.hidden_sizes == (120, 84)


def test_every_bad_field_in_one_error():
    with pytest.raises(ValueError) as e:
        default_config("ppo", "CartPole-v1", gamma=1.5, learning_rate=-1.0, num_minibatches=3, gae_lambda=2.0)
    msg = str(e.value)
    for field, value in [("gamma", "1.5"), ("learning_rate", "-1.0"), ("num_minibatches", "3"), ("gae_lambda", "2.0")]:
        assert f"{field} = {value}" in msg
    assert "must divide" in msg and "[0, 1]" in msg
    assert isinstance(e.value, ConfigError) and len(e.value.problems) == 4


@pytest.mark.parametrize("algo,overrides,field", [
    ("ppo", dict(total_timesteps=100), "total_timesteps"),
    ("ppo", dict(max_grad_norm=0.0), "max_grad_norm"),
    ("ppo", dict(learning_rate=float("nan")), "learning_rate"),
    ("ppo", dict(num_envs=0), "num_envs"),
    ("ppo", dict(seed=-1), "seed"),
    ("ppo", dict(clip_eps=0.0), "clip_eps"),
    ("ppo", dict(num_envs=1, num_steps=4, num_minibatches=4), "normalize_advantages"),
    ("dqn", dict(batch_size=20_000), "batch_size"),
    ("dqn", dict(learning_starts=10**7), "learning_starts"),
    ("dqn", dict(tau=0.0), "tau"),
    ("dqn", dict(eps_end=1.5), "eps_end"),
    ("dqn", dict(target_update_interval=0), "target_update_interval"),
    ("dqn", dict(replay_ratio=0.05), "replay_ratio"),
    ("vtrace", dict(num_minibatches=3), "num_minibatches"),
    ("vtrace", dict(policy_lag=-1), "policy_lag"),
    ("vtrace", dict(clip_rho_threshold=0.0), "clip_rho_threshold"),
])
def test_rules(algo, overrides, field):
    with pytest.raises(ValueError, match=field):
        default_config(algo, "CartPole-v1", **overrides)


def test_unknown_env_and_continuous_actions():
    with pytest.raises(ValueError, match="did you mean 'CartPole-v1'"):
        default_config("ppo", "Cartpole-v1")
    with pytest.raises(ValueError, match="discrete action space"):
        default_config("dqn", "Pendulum-v1")


def test_unknown_override_suggests_field():
    with pytest.raises(ValueError, match="did you mean gamma"):
        default_config("ppo", "CartPole-v1", gama=0.9)
    with pytest.raises(ValueError, match="must be one of"):
        default_config("a2c", "CartPole-v1")


def test_frozen_and_roundtrip():
    c = default_config("vtrace", "CartPole-v1", policy_lag=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.gamma = 0.5  # type: ignore[misc]
    assert config_from_dict(c.to_dict()) == c
    assert isinstance(config_from_dict(default_config("ppo").to_dict()), PPOConfig)
    assert isinstance(config_from_dict(default_config("dqn").to_dict()), DQNConfig)


def test_every_field_documented():
    import inspect

    from jaxrl_policy.running.build import algorithm_names, config_class
    for cls in map(config_class, algorithm_names()):
        src = "".join(inspect.getsource(k) for k in cls.__mro__ if k.__module__.startswith("jaxrl_policy."))
        for f in dataclasses.fields(cls):
            lines = src.splitlines()
            # some definition of the field (subclasses may only change its default) has a docstring
            documented = [i for i, line in enumerate(lines)
                          if line.startswith(f"    {f.name}:") and lines[i + 1].strip().startswith('"""')]
            assert documented, f"{cls.__name__}.{f.name} has no docstring"


@pytest.mark.parametrize("algo", ["ppo", "dqn", "vtrace", "distill"])
def test_traced_status_is_written_once_and_the_help_tag_follows_it(algo, capsys):
    """``Traced[...]`` where a field is introduced decides everything: the traced set, the program's dtype and
    the ``[traced]`` tag of ``--help`` (no docstring repeats it)."""
    import inspect
    import re

    import numpy as np

    from jaxrl_policy.cli.main import main
    from jaxrl_policy.core.config import hparams, int_traced_fields
    from jaxrl_policy.running.build import config_class
    cls = config_class(algo)
    src = "".join(inspect.getsource(k) for k in cls.__mro__ if k.__module__.startswith("jaxrl_policy."))
    assert "[traced]" not in src and "[static]" not in src and "TRACED = " not in src
    for name in cls.TRACED:  # a subclass that only changes a default (DQN's learning_rate) keeps the status
        own = [k.__dict__.get("__annotations__", {}).get(name) for k in cls.__mro__]
        assert any("Traced" in str(a) for a in own if a is not None), name
    if algo != "distill":  # (a distill config needs a teacher folder)
        hp = hparams(default_config(algo, "CartPole-v1"))
        assert {k for k, v in hp.items() if v.dtype == np.int32} == set(int_traced_fields(cls))
    with pytest.raises(SystemExit):
        main(["train", "--algo", algo, "--help"])
    out = capsys.readouterr().out.replace("\n", " ")
    flat = " ".join(out.split())
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        assert flag in flat, flag
        # the help text of the field runs from its flag to the next one: [traced] appears there iff traced
        chunk = re.search(re.escape(flag) + r"(?:, --no-[\w-]+)? (.*?)(?= --[a-z]|$)", flat).group(1)
        assert ("[traced]" in chunk) == (f.name in cls.TRACED), (f.name, chunk)


def test_a_traced_set_written_by_hand_is_refused():
    from typing import ClassVar

    from jaxrl_policy.core.config import BaseConfig
    with pytest.raises(TypeError, match="declare traced fields by their annotation"):
        @dataclasses.dataclass(frozen=True)
        class Old(BaseConfig):
            algo: ClassVar[str] = "old"
            TRACED = frozenset({"learning_rate"})


def test_hparams_are_the_traced_fields_with_program_dtypes():
    import numpy as np

    from jaxrl_policy.core.config import hparams
    for algo in ("ppo", "dqn", "vtrace"):
        cfg = default_config(algo, "CartPole-v1")
        hp = hparams(cfg)
        assert set(hp) == cfg.TRACED and not set(hp) & set(cfg.static_fields())
        for k, v in hp.items():
            want = getattr(cfg, k)
            assert v.dtype in (np.float32, np.int32), k
            assert float(v) == (np.inf if want is None else float(np.float32(want))), k
    assert hparams(default_config("dqn"))["max_grad_norm"] == np.inf  # None: no clipping
    assert hparams(default_config("vtrace", policy_lag=3))["policy_lag"].dtype == np.int32


def test_policy_lag_within_its_static_maximum():
    with pytest.raises(ValueError, match="policy_lag = 5: must be <= max_policy_lag = 4"):
        default_config("vtrace", policy_lag=5, max_policy_lag=4)
    assert default_config("vtrace", policy_lag=3).policy_lag_capacity == 3
    assert default_config("vtrace", policy_lag=3, max_policy_lag=16).policy_lag_capacity == 16


def test_deferred_validation_then_validate():
    from jaxrl_policy.algorithms.ppo import PPOConfig
    from jaxrl_policy.core.config import ConfigError, deferred_validation
    with deferred_validation():
        cfg = PPOConfig(gamma=2.0)
    with pytest.raises(ConfigError, match="gamma = 2.0"):
        cfg.validate()
    with pytest.raises(ConfigError):
        PPOConfig(gamma=2.0)  # validation is back on outside the block

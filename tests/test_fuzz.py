"""Input fuzzing: every config field of every algorithm, drawn at random (hypothesis).

Two properties, kept apart so the budget holds:

1. *No compile.* Any value for any one field (wrong types, out of range, extreme, valid) either
   raises one ``ValueError`` that names the field, or gives a config that is sound: the value has
   the field's type, its traced form is representable (float32 finite, int32 in range), and the
   config survives ``config.json`` (resume). ``FORMER_GAPS`` keeps one example of each kind of
   value validation once let through.
2. *One compile per algorithm.* Valid extreme values of the traced fields (boundaries of their
   ranges), drawn as sweep points of one tiny static-extreme config, train one iteration through
   one vmapped program with finite losses, gradient norms and parameters.
"""
from __future__ import annotations

import dataclasses
import json
import math
import typing

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxrl_policy import make_train, seed_keys
from jaxrl_policy.core.config import hparams
from jaxrl_policy.running.build import algorithm_names, config_class, config_from_dict, default_config

INT32_MAX = 2**31 - 1
FLOAT32_MAX = float(np.finfo(np.float32).max)
COUNTS = {"cases": 0, "rejected": 0, "accepted": 0, "trained_points": 0}

values = st.one_of(
    st.none(), st.booleans(), st.text(max_size=4),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(-3, 300), max_size=3), st.tuples(st.integers(-3, 300)),
    st.sampled_from([0, 1, 2, -1, 0.5, 1e-8, 2**31, 2**32, 1e-45, 3.5e38, 1e300, "tanh", "cnn", "huber", "mlp",
                     (64, 64), "CartPole-v1", "Breakout-MinAtar", "Pendulum-v1"]),
)
def _fake_teacher() -> str:
    """A run folder as distill's validation reads it (config.json, a checkpoint marker): every distill
    case has a valid teacher, so a rejection is about the fuzzed field."""
    import tempfile
    from pathlib import Path
    d = Path(tempfile.mkdtemp(prefix="fuzz-teacher-"))
    (d / "config.json").write_text(json.dumps({**default_config("ppo").to_dict(), "seeds": [0]}))
    (d / "checkpoints" / "chunk_000001").mkdir(parents=True)
    (d / "checkpoints" / "chunk_000001" / "meta.json").write_text("{}")
    (d / "checkpoints" / "LATEST").write_text("chunk_000001")
    return str(d)


BASE = {"distill": {"teachers": (_fake_teacher(),)}}  # fields an algorithm needs to be valid at all
ENV = {"sac": "Pendulum-v1", "td3": "Pendulum-v1"}  # continuous-action learners; the rest run CartPole-v1
algo_field = st.sampled_from([(a, f.name) for a in algorithm_names() for f in dataclasses.fields(config_class(a))])


def _is_bool(v):
    return isinstance(v, bool)


BOOL_FIELDS = {"anneal_lr", "orthogonal_init", "clip_value_loss", "normalize_advantages", "share_torso", "double_q",
               "off_policy_correction"}


def _type_ok(tp, v) -> bool:
    args = typing.get_args(tp)
    if type(None) in args:
        return v is None or _type_ok(next(a for a in args if a is not type(None)), v)
    if tp is bool:
        return _is_bool(v)
    if tp is int:
        return isinstance(v, int) and not _is_bool(v)
    if tp is float:
        return isinstance(v, (int, float)) and not _is_bool(v)
    if tp is str:
        return isinstance(v, str)
    if typing.get_origin(tp) is typing.Literal:
        return v in args
    if typing.get_origin(tp) is tuple:
        return isinstance(v, (tuple, list)) and all(isinstance(x, int) and not _is_bool(x) for x in v)
    return True


def problems_of_accepted(cfg, field, value) -> list[str]:
    """What is wrong with a config that validation accepted (empty: sound)."""
    out = []
    tp = typing.get_type_hints(type(cfg))[field]
    if not _type_ok(tp, value):
        out.append(f"accepted a {type(value).__name__} for a {tp} field")
    if isinstance(value, float) and not math.isfinite(value):
        out.append("accepted a non-finite value")
    if isinstance(value, (int, float)) and not _is_bool(value) and math.isfinite(value):
        if isinstance(value, int) and value > INT32_MAX and _type_ok(tp, 1) and not _type_ok(tp, 0.5):
            out.append("int beyond int32")  # an int field (float fields take large ints as floats)
        if abs(value) > FLOAT32_MAX:
            out.append("beyond float32")
    try:
        with np.errstate(over="raise"):
            hparams(cfg)
        again = config_from_dict(json.loads(json.dumps(cfg.to_dict())))
        if again != cfg:
            out.append("config.json round trip changes it")
    except Exception as e:  # any failure here is a crash after validation
        out.append(f"{type(e).__name__} after validation: {e}")
    return out


@settings(max_examples=600, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(af=algo_field, value=values)
def test_any_value_of_any_field_is_rejected_by_name_or_sound(af, value):
    algo, field = af
    COUNTS["cases"] += 1
    try:
        if field == "env_id":
            cfg = default_config(algo, value, **BASE.get(algo, {}))
        else:
            cfg = default_config(algo, ENV.get(algo, "CartPole-v1"), **{**BASE.get(algo, {}), field: value})
    except ValueError as e:
        COUNTS["rejected"] += 1
        assert field in str(e), f"{algo}.{field} = {value!r}: the error does not name the field: {e}"
        return
    except Exception as e:
        raise AssertionError(f"{algo}.{field} = {value!r}: {type(e).__name__} instead of a ValueError: {e}") from e
    bad = problems_of_accepted(cfg, field, value)
    assert not bad, f"{algo}.{field} = {value!r} accepted but: {bad}"
    COUNTS["accepted"] += 1


FORMER_GAPS = {  # kinds of value config.py once let through (each was a strict xfail until fixed)
    "bool-field-given-a-string": ("ppo", "anneal_lr", "yes"),
    "bool-as-number": ("ppo", "num_epochs", True),
    "bool-as-float": ("ppo", "learning_rate", True),
    "float32-overflow": ("ppo", "learning_rate", 1e300),
    "int32-overflow": ("dqn", "target_update_interval", 2**40),
    "inf-threshold": ("vtrace", "clip_rho_threshold", math.inf),
    "env-id-type": ("ppo", "env_id", None),
}


@pytest.mark.parametrize("gap", list(FORMER_GAPS))
def test_values_that_once_slipped_through_are_rejected_by_name(gap):
    algo, field, value = FORMER_GAPS[gap]
    with pytest.raises(ValueError, match=field):
        default_config(algo, value) if field == "env_id" else default_config(algo, "CartPole-v1", **{field: value})


# ---------------------------------------------------------------------------------------------
# valid extremes train
# ---------------------------------------------------------------------------------------------
STATIC_EXTREME = {  # the smallest programs the configs allow, one iteration
    "ppo": dict(num_envs=1, num_steps=2, total_timesteps=2, num_minibatches=1, num_epochs=1, hidden_sizes=(1,),
                eval_episodes=0, num_chunks=1),
    "dqn": dict(num_envs=1, num_steps=1, total_timesteps=2, learning_starts=1, buffer_size=1, batch_size=1,
                replay_ratio=1.0, hidden_sizes=(1,), eval_episodes=0, num_chunks=1, loss="huber", double_q=True),
    "vtrace": dict(num_envs=1, num_steps=1, total_timesteps=1, num_minibatches=1, replay_capacity=1, replay_ratio=1,
                   hidden_sizes=(1,), eval_episodes=0, num_chunks=1, max_policy_lag=2),
}
UNIT = [0.0, 1e-8, 0.5, 1.0]
EXTREMES = {  # boundary values of the traced fields that validation accepts
    "learning_rate": [1e-12, 1e-8, 1.0], "adam_eps": [1e-12, 1e-8, 1.0], "max_grad_norm": [1e-8, 1e6],
    "gamma": UNIT, "gae_lambda": UNIT, "clip_eps": [1e-8, 1e3], "ent_coef": [0.0, 1e3], "vf_coef": [0.0, 1e3],
    "anneal_lr": [0.0, 1.0], "clip_value_loss": [0.0, 1.0], "normalize_advantages": [0.0, 1.0],
    "learning_starts": [0, 1], "target_update_interval": [1, 10**6], "tau": [1e-8, 1.0], "eps_start": UNIT,
    "eps_end": UNIT, "eps_decay_fraction": UNIT, "huber_delta": [1e-8, 1e6],
    "clip_rho_threshold": [1e-8, 1e6], "clip_pg_rho_threshold": [1e-8, 1e6], "clip_c_threshold": [1e-8, 1e6],
    "policy_lag": [0, 2],
}
POINTS = 4
_TRAIN: dict[str, typing.Any] = {}


def _train(algo):
    """One jitted, vmapped program per algorithm: seeds × POINTS traced points (compiled on first use)."""
    if algo not in _TRAIN:
        cfg = default_config(algo, "CartPole-v1", **STATIC_EXTREME[algo])
        fields = sorted(f for f in EXTREMES if f in cfg.TRACED)
        _TRAIN[algo] = (cfg, fields, jax.jit(jax.vmap(make_train(cfg))))
    return _TRAIN[algo]


@pytest.mark.parametrize("algo", list(STATIC_EXTREME))
def test_valid_extreme_values_train_one_iteration_with_finite_metrics(algo):
    cfg, fields, train = _train(algo)

    @settings(max_examples=4, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.fixed_dictionaries({f: st.sampled_from(EXTREMES[f]) for f in fields}),
                    min_size=POINTS, max_size=POINTS))
    def prop(points):
        for p in points:  # every drawn point is a valid config
            cfg.replace(**{k: (bool(v) if k in BOOL_FIELDS else v) for k, v in p.items()}).validate()
        hp = {f: np.stack([hparams(cfg)[f].dtype.type(p[f]) for p in points]) for f in fields}
        state, m = train(seed_keys(0, POINTS), hp)
        m = jax.tree.map(np.asarray, m)
        learned = m["learned"] > 0
        assert learned.any(), "no iteration learned: the property would be empty"
        for k in ("loss", "grad_norm"):
            assert np.isfinite(m[k][learned]).all(), (k, points, m[k])
        assert (m["nonfinite_params"][:, -1] == 0).all() and np.isnan(m["nonfinite_params"][:, :-1]).all(), points
        for leaf in jax.tree.leaves(state.agent):
            if np.issubdtype(np.asarray(leaf).dtype, np.floating):
                assert np.isfinite(np.asarray(leaf)).all(), points
        COUNTS["trained_points"] += POINTS

    prop()


def test_report_counts():
    """Not a check: prints how many cases ran (pytest -s shows it)."""
    print(f"\nfuzz cases: {COUNTS}")

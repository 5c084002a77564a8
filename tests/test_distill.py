"""Distillation (algorithms/distill.py): zero loss at the teacher, the distribution-shift probe, the CLI."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tolerance import FN, assert_within, gamma, kl_bound, log_softmax64, log_softmax_err

from jaxrl_policy.algorithms import distill as distill_mod
from jaxrl_policy.algorithms.distill import DistillConfig
from jaxrl_policy.cli.main import main
from jaxrl_policy.core import losses as L
from jaxrl_policy.core.config import deferred_validation
from jaxrl_policy.core.envs import env_spec, make_vec_env
from jaxrl_policy.core.networks import make_actor_critic
from jaxrl_policy.core.types import Teacher
from jaxrl_policy.io import dataset as ds
from jaxrl_policy.loop.common import seed_keys, train_fn
from jaxrl_policy.loop.online import make_loop
from jaxrl_policy.running.build import make_train


def hand_config(**kw) -> DistillConfig:
    """A distill config whose teacher is given in-process (``distill_loop``), not from a run folder."""
    with deferred_validation():
        return DistillConfig(teachers=("in-process",), eval_episodes=0, num_chunks=1, **kw)


def hreplace(cfg: DistillConfig, **kw) -> DistillConfig:
    with deferred_validation():
        return cfg.replace(**kw)


def distill_loop(cfg: DistillConfig, *teachers: Teacher):
    """The loop of ``cfg`` with hand-made ``Teacher`` values: the factory takes them as values, no folder read."""
    venv = make_vec_env(cfg.env_id, cfg.num_envs)
    return make_loop(cfg, distill_mod.make_distill(cfg, venv.spec, list(teachers)), venv)


def logit_bound(params, obs):
    """|Δ logits| of one float32 evaluation of ActorCritic's policy (tanh MLP torso, then the policy head) at obs:
    each Dense sums K + 1 terms, γ_{K+1}·(|x||W| + |b|), and carries its input's error through |W|; tanh is
    1-Lipschitz and rounds (FN·u)."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params["params"])
    x = np.asarray(obs, np.float64)
    dx = np.zeros_like(x)
    layers = [p["actor_torso"][k] for k in sorted(p["actor_torso"])] + [p["policy_head"]]
    for i, layer in enumerate(layers):
        w, b = layer["kernel"], layer["bias"]
        z = x @ w + b
        dx = gamma(w.shape[0] + 1) * (np.abs(x) @ np.abs(w) + np.abs(b)) + dx @ np.abs(w)
        x, dx = (z, dx) if i == len(layers) - 1 else (np.tanh(z), dx + gamma(FN))
    return dx


def test_student_initialised_to_teacher_has_zero_distillation_losses():
    """Same architecture and observation, student params = teacher params: the algorithm's distillation
    loss is 0 on the visited states (teacher and student states: β = 1/2), its gradient too (the student
    stays at the teacher), and so are the other divergences on those states."""
    cfg = hand_config(env_id="CartPole-v1", num_envs=4, num_steps=16, total_timesteps=128, hidden_sizes=(16,),
                      num_minibatches=2, mode="mixed", beta_start=0.5, beta_end=0.5,
                      learning_rate=1e-12)  # Adam turns float-noise gradients into lr-sized steps: keep them ~0
    net = make_actor_critic(cfg, env_spec(cfg.env_id))
    params = net.init(jax.random.PRNGKey(7), jnp.zeros((1, 4)))
    params = jax.tree.map(lambda x: 30.0 * x, params)  # a sharp, far-from-uniform teacher
    loop = distill_loop(cfg, Teacher("ppo", cfg.env_id, 0, lambda o: net.apply(params, o)[0]))
    state = loop.init(jax.random.PRNGKey(0))
    state = state._replace(agent=state.agent._replace(params=params))
    new, m = jax.jit(loop.iteration)(state, jnp.int32(0))  # acting with β = 1/2, then learning (forward KL)
    obs = new.storage.data.obs[0].reshape(-1, 4)
    # float32 bounds (tests/tolerance.py). The learner evaluates the student and the teacher (the same network and
    # parameters, the teacher's as constants) separately: their logits differ by δ ≤ 2·logit_bound, so the exact KL
    # of the two is ≤ (e^{2δ} − 1)² (χ² bound, p/q within e^{±2δ}), and its float32 evaluation adds kl_bound.
    # The loss gradient's cotangent on the student's logits, (p_S − p_T·Σp_T)/n per state, is ≤ 2p(e^{2δ} − 1)/n
    # plus its rounding (p·(2E + Σ_b p_b E_b + γ_{2FN+A+6})/n, as test_distill_losses.forward_grad_bound); the
    # gradient norm is ≤ Σ_t ‖∂ℓ_t/∂θ‖_F·‖ct_t‖ over a minibatch of n states (and its own rounding, γ_n relative).
    t = np.asarray(net.apply(params, obs)[0], np.float64)
    delta = 2 * logit_bound(params, obs).max(-1)
    kl_max = float((np.expm1(2 * delta) ** 2 + kl_bound(t, t)).max()) * (1 + gamma(64))
    assert_within(m["distill_loss"], 0.0, kl_max)
    assert_within(m["teacher_kl"], 0.0, kl_max)
    assert float(m["teacher_agreement"]) == 1.0
    n = obs.shape[0] // cfg.num_minibatches
    p, e = np.exp(log_softmax64(t)), log_softmax_err(t)
    ct = (2 * p * np.expm1(2 * delta)[:, None] + p * (2 * e + (p * e).sum(-1, keepdims=True)
                                                       + gamma(2 * FN + 2 + 6))) / n
    jac = jax.jacrev(lambda q: net.apply(q, obs)[0])(params)  # leaves [N, A, ...]
    jac_f = np.sqrt(sum(np.square(np.asarray(j, np.float64)).reshape(len(obs), -1).sum(-1)
                        for j in jax.tree.leaves(jac)))
    assert_within(m["grad_norm"], 0.0, float(np.sort(jac_f * np.linalg.norm(ct, axis=-1))[-n:].sum()) * (1 + gamma(n)))
    assert 0 < float(m["student_env_steps"]) < 64 and float(m["teacher_queries"]) == 64
    # the other divergences on the same visited states (teacher's and student's), student = teacher (up to the
    # ~1e-12 steps lr = 1e-12 allows): against their float64 values on the same float32 logits
    from test_distill_losses import divergence_rows
    student = net.apply(new.agent.params, obs)[0]
    teacher = net.apply(params, obs)[0]
    s64, t64 = np.asarray(student, np.float64), np.asarray(teacher, np.float64)
    for kind, got, beta in (("reverse", L.reverse_kl_loss(student, teacher), 0.5),
                            ("jsd", L.jsd_loss(student, teacher, beta=0.3), 0.3)):
        value, bound = divergence_rows(kind, s64, t64, beta)  # per state; the mean adds γ_{N+1} of mean|D|
        assert_within(got, value.mean(), bound.mean() + gamma(len(obs) + 1) * np.abs(value).mean(), err_msg=kind)


def chain_expert(obs):
    """Probe-Chain-v0's expert: action 0 on the path, 1 off it (sharp logits: it never errs)."""
    off = obs[..., 1:2]
    return jnp.concatenate([20.0 * (1 - 2 * off), -20.0 * (1 - 2 * off)], -1)


def recovery_prob(state, cfg):
    """Mean π_student(recover | off-path state) over the 8 times of an episode."""
    net = make_actor_critic(cfg, env_spec(cfg.env_id))
    obs = jnp.stack([jnp.arange(8) / 8.0, jnp.ones(8)], -1)
    logits = net.apply(jax.tree.map(lambda x: x[0], state.agent.params), obs)[0]
    return float(jax.nn.softmax(logits)[:, 1].mean())


CHAIN_EXPERT = Teacher("hand", "Probe-Chain-v0", 0, chain_expert)


def probe_run(mode):
    cfg = hand_config(env_id="Probe-Chain-v0", num_envs=8, num_steps=8, total_timesteps=8 * 8 * 40,
                      hidden_sizes=(16,), learning_rate=3e-2, mode=mode)
    train = train_fn(distill_loop(cfg, CHAIN_EXPERT), cfg.num_iterations)
    state, m = jax.jit(jax.vmap(train))(seed_keys(0, 1))
    assert np.isfinite(np.asarray(m["distill_loss"])).all()
    return recovery_prob(state, cfg)


def test_on_policy_distillation_recovers_off_policy_does_not(monkeypatch):
    """Probe-Chain-v0: the expert's trajectories never leave the path. Learning on the student's own
    states (on-policy) labels the off-path states it falls into and learns to climb back; learning on
    the teacher's states (off-policy) never sees them. Planted bug: with the acting policy swapped (the
    teacher acts in on-policy mode) on-policy distillation no longer recovers, so the test depends on
    who acts."""
    on, off = probe_run("on-policy"), probe_run("off-policy")
    assert on > 0.9 and off < 0.5, (on, off)
    real = distill_mod.beta_schedule
    monkeypatch.setattr(distill_mod, "beta_schedule",
                        lambda cfg, hp, step: real(hreplace(cfg, mode="off-policy"), hp, step))
    swapped = probe_run("on-policy")
    assert swapped < 0.5, swapped


# ---- fixed datasets and bad inputs --------------------------------------------------------------
def synthetic_dataset(m=256, seed=0):
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(m, 4)).astype(np.float32)
    arrays = {"obs": obs, "action": rng.integers(0, 2, m).astype(np.int32),
              "reward": np.ones(m, np.float32), "terminated": rng.random(m) < 0.05,
              "truncated": np.zeros(m, bool), "next_obs": np.roll(obs, -1, 0),
              "log_prob": np.full(m, np.log(0.5), np.float32)}
    header = {"format": ds.FORMAT, "version": ds.VERSION, "env_id": "CartPole-v1", "source": "synthetic",
              "episodes": 1, "num_transitions": m, "episode_returns": [float(m)]}
    return arrays, header


def test_dataset_round_trips_exactly_and_bad_files_are_named(tmp_path):
    arrays, header = synthetic_dataset()
    path = ds.save(tmp_path / "data", arrays, header)
    assert path.name == "data.npz"
    back, h = ds.load(path)
    for k, v in arrays.items():
        assert back[k].dtype == v.dtype and np.array_equal(back[k], v), k
    assert h["num_transitions"] == 256 and h["fields"]["obs"]["shape"] == [256, 4]
    raw = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    bad = {"cut.npz": "not a readable .npz", "missing.npz": "no such file"}
    np.savez(tmp_path / "noheader.npz", obs=arrays["obs"])
    bad["noheader.npz"] = "no header"
    ds.save(tmp_path / "v0.npz", arrays, {**header, "version": 0})
    bad["v0.npz"] = "version = 0"
    ds.save(tmp_path / "short.npz", {**arrays, "reward": arrays["reward"][:10]}, header)
    bad["short.npz"] = "field 'reward' has 10 rows"
    ds.save(tmp_path / "dtype.npz", {**arrays, "action": arrays["action"].astype(np.float32)}, header)
    bad["dtype.npz"] = "field 'action' has dtype float32"
    for name, problem in bad.items():
        with pytest.raises(ds.DatasetError) as e:
            ds.load(tmp_path / name)
        assert str(tmp_path / name) in str(e.value) and problem in str(e.value), (name, str(e.value))


def fake_run(folder, env_id, seeds=1):
    """A run folder as teacher validation reads it: config.json and a checkpoint marker (no weights)."""
    from jaxrl_policy import default_config
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({**default_config("ppo", env_id).to_dict(),
                                                     "seeds": list(range(seeds))}))
    ck = folder / "checkpoints" / "chunk_000001"
    ck.mkdir(parents=True)
    (ck / "meta.json").write_text("{}")
    (folder / "checkpoints" / "LATEST").write_text("chunk_000001")
    return str(folder)


def test_bad_teachers_and_datasets_exit_2_naming_the_problem(tmp_path, capsys):
    acrobot = fake_run(tmp_path / "acrobot", "Acrobot-v1")
    cartpole = fake_run(tmp_path / "cartpole", "CartPole-v1")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    cases = [
        (["distill", "--teacher", str(tmp_path / "nope")], ["teachers", "nope", "no such folder"]),
        (["distill", "--teacher", acrobot], ["teachers", "has 3 actions (Acrobot-v1) but env_id CartPole-v1 has 2"]),
        (["distill", "--teacher", cartpole, "--teacher-seed", "2"], ["teacher_seed = 2 is not a seed index"]),
        (["distill", "--teacher", cartpole, "--student-obs", "Acrobot-v1"], ["student_obs", "observation wrapper"]),
        (["distill", "--teacher", cartpole, "--teacher", cartpole, "--num-envs", "3", "--num-minibatches", "1"],
         ["num_envs = 3", "multiple of the 2 teachers"]),
        (["distill", "--teacher", cartpole, "--dataset", str(tmp_path / "junk.npz")],
         ["dataset", "junk.npz", "not a readable .npz", "mode = 'on-policy'"]),
        (["train", "--algo", "dqn", "--dataset", str(tmp_path / "missing.npz")], ["dataset", "no such file"]),
        (["train", "--algo", "ppo", "--dataset", str(tmp_path / "junk.npz")], ["ppo does not learn from datasets"]),
        (["collect", "--from", acrobot, "--episodes", "2", "--out", str(tmp_path / "d"), "--env", "CartPole-v1"],
         ["has 3 actions"]),
    ]
    for argv, needles in cases:
        with pytest.raises(SystemExit) as e:
            main(argv + ["--out", str(tmp_path / "out")] if argv[0] != "collect" else argv)
        err = capsys.readouterr().err
        assert e.value.code == 2, (argv, err)
        for needle in needles:
            assert needle in err, (argv, needle, err)
    assert not (tmp_path / "out").exists()  # nothing ran


def test_dqn_learns_from_a_dataset_without_env_steps(tmp_path):
    arrays, header = synthetic_dataset(m=300)
    path = ds.save(tmp_path / "data.npz", arrays, header)
    from jaxrl_policy import default_config
    cfg = default_config("dqn", "CartPole-v1", dataset=str(path), learning_starts=0, total_timesteps=200,
                         num_chunks=2, eval_episodes=2, eval_max_steps=20)
    state, m = jax.jit(jax.vmap(make_train(cfg)))(seed_keys(0, 1))
    assert (np.asarray(m["env_steps"]) == 0).all() and (np.asarray(m["episodes"]) == 0).all()
    assert float(m["grad_steps"][0, -1]) == 20  # 20 iterations × 1 gradient step
    assert np.isfinite(np.asarray(m["eval_return"][0, -1]))
    # the storage is the dataset: 300 transitions as 30 unrolls of 1 step × 10 envs (nothing else added)
    np.testing.assert_array_equal(np.asarray(state.storage.data.obs[0]).reshape(-1, 4), arrays["obs"][:300])

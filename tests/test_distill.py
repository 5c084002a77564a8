"""Distillation (algorithms/distill.py): zero loss at the teacher, the distribution-shift probe, the CLI."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_policy.algorithms import distill as distill_mod
from jaxrl_policy.config import DistillConfig, deferred_validation
from jaxrl_policy.envs.adapter import env_spec
from jaxrl_policy.loop import make_loop, make_train
from jaxrl_policy.networks import make_actor_critic
from jaxrl_policy.runner import seed_keys
from jaxrl_policy.teacher import Teacher


def hand_config(**kw) -> DistillConfig:
    """A distill config whose teacher is given in-process (``use_teachers``), not from a run folder."""
    with deferred_validation():
        return DistillConfig(teachers=("in-process",), eval_episodes=0, num_chunks=1, **kw)


def hreplace(cfg: DistillConfig, **kw) -> DistillConfig:
    with deferred_validation():
        return cfg.replace(**kw)


def use_teachers(monkeypatch, *teachers: Teacher):
    monkeypatch.setattr(distill_mod, "teachers_of", lambda cfg: list(teachers))


def test_student_initialised_to_teacher_has_zero_distillation_losses(monkeypatch):
    """Same architecture and observation, student params = teacher params: every divergence is 0 on the
    visited states (teacher and student states: β = 1/2), and the student agrees with the teacher."""
    cfg = hand_config(env_id="CartPole-v1", num_envs=4, num_steps=16, total_timesteps=128, hidden_sizes=(16,),
                      num_minibatches=2, mode="mixed", beta_start=0.5, beta_end=0.5,
                      learning_rate=1e-12)  # Adam turns float-noise gradients into lr-sized steps: keep them ~0
    net = make_actor_critic(cfg, env_spec(cfg.env_id))
    params = net.init(jax.random.PRNGKey(7), jnp.zeros((1, 4)))
    params = jax.tree.map(lambda x: 30.0 * x, params)  # a sharp, far-from-uniform teacher
    use_teachers(monkeypatch, Teacher("in-process", "ppo", cfg.env_id, 0, lambda o: net.apply(params, o)[0], params))
    loops = {d: make_loop(hreplace(cfg, divergence=d)) for d in ("forward", "reverse", "jsd")}

    @jax.jit
    def one_iteration_each(key):  # one program for the three divergences: one compile
        out = {}
        for d, loop in loops.items():
            state = loop.init(key)
            state = state._replace(agent=state.agent._replace(params=params))
            out[d] = loop.iteration(state, jnp.int32(0))[1]
        return out

    for d, m in one_iteration_each(jax.random.PRNGKey(0)).items():
        assert abs(float(m["distill_loss"])) < 1e-6, d
        assert float(m["teacher_kl"]) < 1e-6
        assert float(m["teacher_agreement"]) == 1.0
        assert float(m["grad_norm"]) < 1e-5
        assert 0 < float(m["student_env_steps"]) < 64 and float(m["teacher_queries"]) == 64


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


def probe_run(mode):
    cfg = hand_config(env_id="Probe-Chain-v0", num_envs=8, num_steps=8, total_timesteps=8 * 8 * 40,
                      hidden_sizes=(16,), learning_rate=3e-2, mode=mode)
    state, m = jax.jit(jax.vmap(make_train(cfg)))(seed_keys(0, 1))
    assert np.isfinite(np.asarray(m["distill_loss"])).all()
    return recovery_prob(state, cfg)


def test_on_policy_distillation_recovers_off_policy_does_not(monkeypatch):
    """Probe-Chain-v0: the expert's trajectories never leave the path. Learning on the student's own
    states (on-policy) labels the off-path states it falls into and learns to climb back; learning on
    the teacher's states (off-policy) never sees them. Planted bug: with the acting policy swapped (the
    teacher acts in on-policy mode) on-policy distillation no longer recovers, so the test depends on
    who acts."""
    use_teachers(monkeypatch, Teacher("in-process", "hand", "Probe-Chain-v0", 0, chain_expert, None))
    on, off = probe_run("on-policy"), probe_run("off-policy")
    assert on > 0.9 and off < 0.5, (on, off)
    real = distill_mod.beta_schedule
    monkeypatch.setattr(distill_mod, "beta_schedule",
                        lambda cfg, hp, step: real(hreplace(cfg, mode="off-policy"), hp, step))
    swapped = probe_run("on-policy")
    assert swapped < 0.5, swapped

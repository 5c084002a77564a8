"""Policy distillation from frozen teachers as one bundle of pure functions; ``mode`` picks who acts.

Shape legend: ``T`` time, ``E`` envs, ``MB`` envs per minibatch, ``A`` actions, ``O...`` the env's
observation, ``V...`` the student's view of it, ``n`` teachers, ``H`` recurrent state.

One loop, one bundle, three modes differing only in β, the probability that the teacher acts:

- ``off-policy``: β = 1. The teacher acts; the student minimises the divergence to the teacher on
  the teacher's states (Rusu et al. 2016; Czarnecki et al. 2019's "teacher distill").
- ``on-policy``: β = 0. The student acts; the teacher labels the states the student visits (Ross
  et al. 2011, DAgger; Czarnecki et al. 2019's "on-policy distill"; Agarwal et al. 2024, GKD).
- ``mixed``: β decays linearly from ``beta_start`` to ``beta_end`` over ``beta_decay_fraction`` of the
  budget; per env and step the teacher acts with probability β (DAgger's β-mixture, Ross et al. 2011 §3).

The behaviour policy is the mixture μ = β π_T + (1 − β) π_S; its log-probability of the taken action
is stored, so the diagnostics (importance ratio π_S / μ, KL(μ ‖ π_S), data age) and the optional
env-reward term (V-trace actor-critic, Espeholt et al. 2018, with ρ̄ = c̄ = 1, weight ``rl_coef``) are
correct in every mode. The teacher sees the env's observation; the student sees ``student_obs`` of it
(a masking view, ``core/envs/wrappers.observation_view``): a privileged teacher. Env copy e has teacher
``e mod n``; labels are recomputed at learning time from the stored full observations (the teacher
is frozen, so they equal the acting-time ones).

Accounting (agent state, logged as counters): ``teacher_queries`` = states the teacher labelled or
acted in (each visited state once: one per env step, whatever the mode), ``student_env_steps`` =
env steps in which the student chose the action, ``grad_steps``.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxrl_policy.algorithms.actor_critic import (
    ActorCriticConfig,
    make_export,
    make_greedy,
    next_state_values,
    vtrace_actor_critic,
)
from jaxrl_policy.algorithms.common import (
    ActorState,
    HParams,
    action_space,
    age_diagnostics,
    init_obs_stats,
    init_optimizer,
    is_constant,
    linear_schedule,
    make_update,
    mean_metrics,
    per_env,
    ratio_diagnostics,
    sampled_kl,
    split_envs,
    unroll_policy,
)
from jaxrl_policy.core import losses
from jaxrl_policy.core.config import BaseConfig, Traced, is_int, is_number
from jaxrl_policy.core.envs import EnvSpec, env_spec, split_env_id, unknown_env_message
from jaxrl_policy.core.envs.wrappers import observation_view
from jaxrl_policy.core.losses.distill import DIVERGENCES
from jaxrl_policy.core.networks import dummy_obs, make_actor_critic
from jaxrl_policy.core.normalization import RunningStats, normalize
from jaxrl_policy.core.normalization import update as update_stats
from jaxrl_policy.core.storage import make_ring
from jaxrl_policy.core.types import Algorithm, Params, Teacher, Transition

DistillMode = Literal["off-policy", "on-policy", "mixed"]
Divergence = Literal["forward", "reverse", "jsd"]


@dataclass(frozen=True)
class DistillConfig(ActorCriticConfig):
    """Policy distillation from frozen teachers (``core/losses/distill.py``).

    ``mode`` picks who acts: the teacher (``off-policy``: the student learns on teacher states, as
    behaviour cloning with soft labels, Rusu et al. 2016), the student (``on-policy``: the states the
    student visits are labelled by the teacher, DAgger-style, Ross et al. 2011; Agarwal et al. 2024),
    or the teacher with probability β decaying from ``beta_start`` to ``beta_end`` (``mixed``, DAgger's
    β-mixture). The env is ``env_id`` (the teachers see its observation); the student sees
    ``student_obs`` of it when given (a privileged teacher). Env copy e is labelled (and, when the
    teacher acts, driven) by teacher ``e mod len(teachers)``.
    """

    teachers: tuple[str, ...] = ()
    """run folders of the teachers (config.json + checkpoints/); at least one."""
    teacher_seed: int = 0
    """which seed of each teacher run teaches: an index into the run's seeds list."""
    teacher_temperature: float = 1.0
    """teacher logits are divided by τ (a DQN teacher acts by softmax(Q / τ))."""
    mode: DistillMode = "on-policy"
    """who acts: off-policy = the teacher, on-policy = the student, mixed = the teacher with probability β."""
    divergence: Divergence = "forward"
    """per-state loss: forward = KL(teacher ‖ student), reverse = KL(student ‖ teacher), jsd = GKD's JSD(β)."""
    jsd_beta: Traced[float] = 0.5
    """β of the generalised JSD (divergence = jsd), in (0, 1)."""
    beta_start: Traced[float] = 1.0
    """mixed mode: probability that the teacher acts at the start."""
    beta_end: Traced[float] = 0.0
    """mixed mode: probability that the teacher acts after the decay."""
    beta_decay_fraction: Traced[float] = 0.5
    """mixed mode: fraction of total_timesteps over which β decays linearly."""
    student_obs: str | None = None
    """an observation-wrapper env id of env_id (e.g. CartPole-v1-NoVelocity): what the student sees."""
    distill_coef: Traced[float] = 1.0
    """weight of the distillation loss."""
    rl_coef: Traced[float] = 0.0
    """weight of the env-reward term (V-trace actor-critic with ρ̄ = c̄ = 1 on the acting data); 0 = none."""
    gae_lambda: Traced[float] = 0.95
    """λ of the V-trace targets of the reward term."""
    ent_coef: Traced[float] = 0.0
    """entropy bonus of the reward term."""
    vf_coef: Traced[float] = 0.5
    """value-loss weight of the reward term."""
    num_epochs: int = 2
    """unrolls drawn from storage per iteration (the first is the newest)."""
    num_minibatches: int = 2
    """minibatches per drawn unroll, split along the env axis (must divide num_envs)."""
    replay_capacity: int = 1
    """unrolls kept (K); 1 = only the latest."""

    num_envs: int = 8
    num_steps: int = 64
    total_timesteps: int = 50_000
    learning_rate: float = 1e-3
    anneal_lr: bool = False

    algo: ClassVar[str] = "distill"
    CONTINUOUS_ACTIONS: ClassVar[bool] = False
    OFFLINE: ClassVar[bool] = True
    TEACHERS: ClassVar[bool] = True

    def with_replay_unrolls(self, unrolls: int) -> BaseConfig:
        return dataclasses.replace(self, replay_capacity=unrolls)

    @property
    def gradient_steps_per_iteration(self) -> int:
        return self.num_epochs * self.num_minibatches

    def _problems(self):
        p = super()._problems()
        g = lambda n: getattr(self, n)  # noqa: E731
        if self.mode not in ("off-policy", "on-policy", "mixed"):
            p.append(("mode", self.mode, "must be off-policy, on-policy or mixed"))
        if self.divergence not in ("forward", "reverse", "jsd"):
            p.append(("divergence", self.divergence, "must be forward, reverse or jsd"))
        if not (is_number(self.jsd_beta) and 0 < self.jsd_beta < 1):
            p.append(("jsd_beta", self.jsd_beta, "must be in (0, 1)"))
        for name in ("beta_start", "beta_end", "beta_decay_fraction", "gae_lambda"):
            if not (is_number(g(name)) and 0 <= g(name) <= 1):
                p.append((name, g(name), "must be in [0, 1]"))
        for name in ("distill_coef", "rl_coef", "ent_coef", "vf_coef"):
            if not (is_number(g(name)) and math.isfinite(g(name)) and g(name) >= 0):
                p.append((name, g(name), "must be a finite number >= 0"))
        if not (is_number(self.teacher_temperature) and math.isfinite(self.teacher_temperature)
                and self.teacher_temperature > 0):
            p.append(("teacher_temperature", self.teacher_temperature, "must be a finite number > 0"))
        for name in ("num_epochs", "num_minibatches", "replay_capacity"):
            if not (is_int(g(name)) and g(name) >= 1):
                p.append((name, g(name), "must be an integer >= 1"))
        if is_int(self.num_minibatches) and self.num_minibatches >= 1 and is_int(self.num_envs) \
                and self.num_envs % self.num_minibatches:
            p.append(("num_minibatches", self.num_minibatches, f"must divide num_envs = {self.num_envs}"))
        if self.dataset is not None:  # the teacher labels the dataset's states: off-policy, feed-forward, no reward
            if self.mode != "off-policy":
                p.append(("mode", self.mode, "must be off-policy with a dataset (nobody acts)"))
            if self.torso == "gru":
                p.append(("torso", self.torso, "a dataset is shuffled into transitions: no recurrent student"))
            if self.rl_coef != 0:
                p.append(("rl_coef", self.rl_coef, "must be 0 with a dataset (transitions, not trajectories)"))
            if isinstance(self.teachers, tuple) and len(self.teachers) > 1:
                p.append(("teachers", self.teachers, "one teacher labels a dataset"))
        if not is_int(self.teacher_seed) or self.teacher_seed < 0:
            p.append(("teacher_seed", self.teacher_seed, "must be an integer >= 0"))
        env_ok = isinstance(self.env_id, str) and unknown_env_message(self.env_id) is None
        if self.student_obs is not None and not isinstance(self.student_obs, str):
            p.append(("student_obs", self.student_obs, "must be an env id (a string) or None"))
        elif self.student_obs is not None and env_ok:
            try:
                observation_view(self.student_obs, self.env_id)
            except ValueError as e:
                p.append(("student_obs", self.student_obs, str(e)))
        if not (isinstance(self.teachers, tuple) and self.teachers and all(isinstance(t, str) for t in self.teachers)):
            p.append(("teachers", self.teachers, "must name at least one teacher run folder"))
        elif env_ok and is_int(self.teacher_seed):  # (the run folders themselves: running/preflight.py)
            n, settings = len(self.teachers), len(split_env_id(self.env_id)[1])
            if is_int(self.num_envs) and self.num_envs % n:
                p.append(("num_envs", self.num_envs,
                          f"must be a multiple of the {n} teachers (env e has teacher e mod {n})"))
            if settings > 1 and settings != n:
                p.append(("env_id", self.env_id, f"lists {settings} env settings for {n} teachers: give one per "
                                                 "teacher (env e has setting and teacher e mod n)"))
        return p


class DistillState(NamedTuple):
    params: Params  # the student's actor-critic parameters
    opt_state: optax.OptState
    grad_steps: jax.Array  # int32 scalar
    obs_stats: RunningStats | None  # running statistics of the student's view (normalize_observations)
    teacher_queries: jax.Array  # int32 scalar: states labelled by (or acted in by) a teacher
    student_env_steps: jax.Array  # int32 scalar: env steps in which the student acted




def beta_schedule(cfg: DistillConfig, hp: HParams, env_step):
    """Probability that the teacher acts: 1 off-policy, 0 on-policy, a linear decay in env steps when mixed."""
    if cfg.mode == "off-policy":
        return jnp.float32(1.0)
    if cfg.mode == "on-policy":
        return jnp.float32(0.0)
    return linear_schedule(hp["beta_start"], hp["beta_end"], hp["beta_decay_fraction"], cfg.total_timesteps, env_step)


def make_teacher_logits(teachers: list[Teacher]) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """``(obs [..., O...], teacher_id [...]) -> logits [..., A]``: each state labelled by its own teacher."""
    def logits(obs, teacher_id):
        lead = teacher_id.shape
        flat = obs.reshape(-1, *obs.shape[len(lead):])
        if len(teachers) == 1:
            out = teachers[0].logits(flat)
        else:  # every teacher on every state, then each state's own (n is small)
            every = jnp.stack([t.logits(flat) for t in teachers])  # [n, N, A]
            out = jnp.take_along_axis(every, teacher_id.reshape(1, -1, 1), 0)[0]
        return jax.lax.stop_gradient(out).reshape(*lead, out.shape[-1])
    return logits


def mixture_act(key: jax.Array, policy: jax.Array, t_logits: Callable[[], jax.Array], beta
                ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Who acts, per env: the teacher with probability β, else the student (``policy``: its logits ``[E, A]``;
    ``t_logits()``: the teachers' ``[E, A]``, asked only when a teacher may act). Returns ``(action [E],
    log μ(action) [E] of the mixture μ = β π_T + (1 − β) π_S, teacher_acted [E])``."""
    E = policy.shape[0]
    k_s, k_t, k_u = jax.random.split(key, 3)
    action = jax.random.categorical(k_s, policy)
    log_s = jax.nn.log_softmax(policy)
    if is_constant(beta) and float(beta) == 0.0:  # on-policy: the teacher only labels (at learning time)
        return action, losses.categorical_log_prob(policy, action), jnp.zeros((E,), bool)
    teacher = t_logits()
    teacher_acted = jax.random.uniform(k_u, (E,)) < beta
    action = jnp.where(teacher_acted, jax.random.categorical(k_t, teacher), action)
    log_t = jax.nn.log_softmax(teacher)
    pick = lambda lp: jnp.take_along_axis(lp, action[:, None], -1)[:, 0]  # noqa: E731
    # log μ(a) of the mixture μ = β π_T + (1 − β) π_S (log 0 = −inf drops a term at β ∈ {0, 1})
    log_mu = jnp.logaddexp(jnp.log(beta) + pick(log_t), jnp.log1p(-beta) + pick(log_s))
    return action, log_mu, teacher_acted


def make_distill(cfg: DistillConfig, spec: EnvSpec, teachers: list[Teacher]) -> Algorithm:
    """``teachers``: one ``Teacher`` value per entry of ``cfg.teachers`` (the running floor loads them from the
    run folders, ``run/build.load_teacher``; tests build them by hand)."""
    n_teachers = len(teachers)
    view = observation_view(cfg.student_obs, cfg.env_id) if cfg.student_obs else (lambda o: o)
    student_spec = env_spec(cfg.student_obs) if cfg.student_obs else spec
    net = make_actor_critic(cfg, student_spec)
    apply: Callable[..., Any] = net.apply
    space = action_space(cfg, student_spec)
    recurrent = cfg.torso == "gru"
    G = cfg.gradient_steps_per_iteration
    NMB = cfg.num_minibatches
    teacher_logits = make_teacher_logits(teachers)
    divergence: Callable[..., jax.Array] = DIVERGENCES[cfg.divergence]

    def init(key):
        params = net.init(key, dummy_obs(student_spec.obs_shape), net.initial_carry(1))
        zero = jnp.zeros((), jnp.int32)
        return DistillState(params=params, opt_state=init_optimizer(params), grad_steps=zero,
                            obs_stats=init_obs_stats(cfg, student_spec), teacher_queries=zero, student_env_steps=zero)

    def actor(state: DistillState, hp: HParams) -> ActorState:
        return ActorState(state.params, state.grad_steps, state.obs_stats)

    def act(actor_state: ActorState, obs, carry, key, env_step, hp: HParams):
        E = obs.shape[0]
        policy, _, carry = apply(actor_state.params, normalize(actor_state.obs_stats, view(obs)), carry)
        teacher_id = jnp.arange(E, dtype=jnp.int32) % n_teachers
        action, log_mu, teacher_acted = mixture_act(key, policy, lambda: teacher_logits(obs, teacher_id),
                                                    beta_schedule(cfg, hp, env_step))
        extras = {"log_prob": log_mu, "teacher_acted": teacher_acted, "teacher_id": teacher_id,
                  "version": jnp.broadcast_to(actor_state.version, (E,))}
        return action, extras, carry

    def observe(state: DistillState, unroll: Transition, hp: HParams):
        n = unroll.reward.size
        state = state._replace(teacher_queries=state.teacher_queries + n,
                               student_env_steps=state.student_env_steps
                               + (~unroll.extras["teacher_acted"]).sum().astype(jnp.int32))
        if state.obs_stats is not None:
            state = state._replace(obs_stats=update_stats(state.obs_stats, view(unroll.obs)))
        return state

    def rl_terms(params, hp: HParams, u: Transition, obs_stats, policy, v_tm1, carries):
        """V-trace actor-critic terms on the acting data (behaviour μ = the stored mixture)."""
        next_obs = normalize(obs_stats, view(u.next_obs))
        v_t = jax.lax.stop_gradient(next_state_values(apply, params, v_tm1, next_obs, u.truncated,
                                                      carries if recurrent else None, spec.max_episode_steps))
        logp = losses.categorical_log_prob(policy, u.action)
        rho = jnp.exp(jax.lax.stop_gradient(logp) - u.extras["log_prob"])
        pg, v, ent = vtrace_actor_critic(u, logp, losses.categorical_entropy(policy), v_tm1, v_t, rho, hp)
        return pg + hp["vf_coef"] * v + hp["ent_coef"] * ent, {"pg_loss": pg, "value_loss": v, "entropy": -ent}

    def loss_fn(params, hp: HParams, u: Transition, obs_stats):
        # u: Transition [T, MB]
        obs = normalize(obs_stats, view(u.obs))
        if recurrent:
            policy, v_tm1, carries = unroll_policy(apply, params, obs, u.extras["carry"][0], u.extras["first"])
        else:
            policy, v_tm1, carries = apply(params, obs)
        # each state's teacher (a dataset has none recorded: teacher 0, the only one allowed)
        teacher_id = u.extras.get("teacher_id", jnp.zeros(u.reward.shape, jnp.int32))
        t_logits = teacher_logits(u.obs, teacher_id)  # [T, MB, A]
        if cfg.divergence == "jsd":
            div = jax.vmap(lambda s, t: divergence(s, t, beta=hp["jsd_beta"]))(per_env(policy), per_env(t_logits))
        else:
            div = jax.vmap(divergence)(per_env(policy), per_env(t_logits))
        distill = div.mean()
        total = hp["distill_coef"] * distill
        aux: dict[str, jax.Array] = {"distill_loss": distill}
        if not (is_constant(hp["rl_coef"]) and float(hp["rl_coef"]) == 0.0):
            rl, rl_aux = rl_terms(params, hp, u, obs_stats, policy, v_tm1, carries)
            total = total + hp["rl_coef"] * rl
            aux.update(rl_aux)
        log_rho = jax.lax.stop_gradient(losses.categorical_log_prob(policy, u.action)) - u.extras["log_prob"]
        sg = jax.lax.stop_gradient
        aux.update(teacher_kl=losses.categorical_kl(t_logits, sg(policy)).mean(),
                   teacher_agreement=(jnp.argmax(policy, -1) == jnp.argmax(t_logits, -1)).astype(jnp.float32).mean(),
                   policy_kl=sampled_kl(log_rho), **ratio_diagnostics(jnp.exp(log_rho), -jnp.inf, jnp.inf))
        return total, aux

    update = make_update(loss_fn, G, cfg.num_iterations)

    def learn(state: DistillState, unrolls: Transition, key, env_step, hp: HParams):
        # unrolls: Transition [R, T, E]; each split along envs into NMB minibatches of MB envs.
        split = functools.partial(split_envs, num_minibatches=NMB)

        def step(carry, u):
            params, opt_state, grad_steps = carry
            params, opt_state, metrics = update(params, opt_state, hp, u, state.obs_stats)
            metrics.update(age_diagnostics(grad_steps, u.extras["version"]))
            return (params, opt_state, grad_steps + 1), metrics

        (params, opt_state, grad_steps), stats = jax.lax.scan(
            step, (state.params, state.opt_state, state.grad_steps), jax.tree.map(split, unrolls))
        metrics = mean_metrics(stats)
        metrics.update(grad_steps=grad_steps.astype(jnp.float32),
                       teacher_queries=state.teacher_queries.astype(jnp.float32),
                       student_env_steps=state.student_env_steps.astype(jnp.float32),
                       beta=beta_schedule(cfg, hp, env_step))
        return state._replace(params=params, opt_state=opt_state, grad_steps=grad_steps), metrics

    storage = make_ring(cfg.replay_capacity, "unrolls", num_draws=cfg.num_epochs)
    return Algorithm(init=init, actor=actor, act=act, learn=learn, greedy=make_greedy(apply, space, view),
                     storage=storage,
                     init_carry=net.initial_carry if recurrent else None, export=make_export(net), observe=observe)

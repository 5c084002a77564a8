"""Probe environments: tiny, deterministic, with values known in closed form.

They follow gymnax's ``Environment`` interface (``step_env`` / ``reset_env`` / ``is_truncated``),
so the same adapter (and gymnax 1.0's auto-reset) drives them. Used by tests to check that an
algorithm learns values and policies it must learn, and that time-limit truncation is
bootstrapped (after "Debugging RL, Without the Agonizing Pain", A. Jones 2021).

Shape legend: observations are ``[1]`` float32 unless stated.

- ``Probe-Constant-v0``: one step, reward 1, terminates. V(s) = 1.
- ``Probe-TimeLimit-v0``: reward 1 every step, never terminates, truncated after 10 steps; obs
  constant. V(s) = 1 / (1 − γ) if truncation bootstraps.
- ``Probe-TwoArm-v0``: one step; action 0 pays +1, action 1 pays −1. π(0 | s) → 1.
- ``Probe-ObsDependent-v0``: one step; obs is ±1 at random; reward +1 if action == (obs > 0)
  else −1. π follows the sign of obs.
- ``Probe-Terminate-v0``: reward 1 every step, terminates after 10 steps, time left in obs.
  V(s_t) = Σ_{k<10−t} γ^k.
- ``Probe-Chain-v0``: the distribution-shift probe of distillation. Obs ``[2]`` = (time / 8, off);
  8 steps, then truncated. On the path (off = 0) action 0 moves on (reward 1) and action 1 falls off
  (off = 1, reward 0); off the path action 1 climbs back (reward 0) and action 0 stays off. The expert
  (0 on the path, 1 off it) never leaves the path, so its trajectories never show the off-path states
  a learner reaches after one mistake: learning on the expert's states cannot teach recovery,
  learning on the learner's own states can (Ross et al. 2011).
- ``Probe-ContinuousBandit-v0``: one step; obs is ±1 at random; the action is continuous in
  ``[-1, 1]`` and pays −(a − obs/2)². The best action is obs/2 (±0.5): a continuous actor's greedy
  action must follow it.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces


@struct.dataclass
class ProbeState(environment.EnvState):
    sign: jax.Array  # [] float32, used by the obs-dependent probe


@struct.dataclass
class ProbeParams(environment.EnvParams):
    max_steps_in_episode: int = 10
    terminate_after: int = 10  # Probe-Terminate: natural end


class _Probe(environment.Environment[ProbeState, ProbeParams]):
    """Base: one-step episodes unless a subclass says otherwise."""

    num_actions_: int = 2

    @property
    def default_params(self) -> ProbeParams:
        return ProbeParams()

    @property
    def num_actions(self) -> int:
        return self.num_actions_

    def action_space(self, params=None):
        return spaces.Discrete(self.num_actions_)

    def observation_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (1,), jnp.float32)

    def reset_env(self, key, params):
        sign = jnp.where(jax.random.bernoulli(key), 1.0, -1.0)
        state = ProbeState(time=0, sign=sign)
        return self.get_obs(state, params), state

    def get_obs(self, state, params=None, key=None):
        return jnp.zeros((1,), jnp.float32)

    def is_terminated(self, state, params):
        return jnp.array(True)

    def _reward(self, state, action):
        return jnp.float32(1.0)

    def step_env(self, key, state, action, params):
        reward = self._reward(state, action)
        state = state.replace(time=state.time + 1)
        terminated = self.is_terminated(state, params)
        return self.get_obs(state, params), state, reward, terminated, {}


class Constant(_Probe):
    num_actions_ = 1


class TwoArm(_Probe):
    def _reward(self, state, action):
        return jnp.where(action == 0, 1.0, -1.0).astype(jnp.float32)


class ObsDependent(_Probe):
    def get_obs(self, state, params=None, key=None):
        return state.sign[None].astype(jnp.float32)

    def _reward(self, state, action):
        good = action == (state.sign > 0).astype(jnp.int32)
        return jnp.where(good, 1.0, -1.0).astype(jnp.float32)


class TimeLimit(_Probe):
    """Never terminates; gymnax's ``is_truncated`` cuts it at ``max_steps_in_episode``."""

    num_actions_ = 1

    def is_terminated(self, state, params):
        return jnp.array(False)


class Terminate(_Probe):
    """Terminates after ``terminate_after`` steps; the fraction of time left is observed."""

    num_actions_ = 1

    @property
    def default_params(self) -> ProbeParams:
        return ProbeParams(max_steps_in_episode=1000, terminate_after=10)

    def get_obs(self, state, params=None, key=None):
        params = params or self.default_params
        return jnp.array([1.0 - state.time / params.terminate_after], jnp.float32)

    def is_terminated(self, state, params):
        return state.time >= params.terminate_after


@struct.dataclass
class ChainState(environment.EnvState):
    off: jax.Array  # [] bool: fell off the path


class Chain(environment.Environment[ChainState, ProbeParams]):
    @property
    def default_params(self) -> ProbeParams:
        return ProbeParams(max_steps_in_episode=8)

    @property
    def num_actions(self) -> int:
        return 2

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params=None):
        return spaces.Box(0.0, 1.0, (2,), jnp.float32)

    def get_obs(self, state, params=None, key=None):
        params = params or self.default_params
        return jnp.stack([state.time / params.max_steps_in_episode, state.off.astype(jnp.float32)])

    def reset_env(self, key, params):
        state = ChainState(time=0, off=jnp.array(False))
        return self.get_obs(state, params), state

    def is_terminal(self, state, params):
        return state.time >= params.max_steps_in_episode

    def step_env(self, key, state, action, params):
        reward = jnp.where(~state.off & (action == 0), 1.0, 0.0).astype(jnp.float32)
        off = jnp.where(state.off, action == 0, action == 1)
        state = ChainState(time=state.time + 1, off=off)
        return self.get_obs(state, params), state, reward, jnp.array(False), {}


class ContinuousBandit(ObsDependent):
    """One step, a Box action in [−1, 1]; reward −(a − obs/2)²."""

    def action_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (1,), jnp.float32)

    def _reward(self, state, action):
        return -jnp.square(jnp.reshape(action, ()) - 0.5 * state.sign).astype(jnp.float32)


PROBES = {
    "Probe-ContinuousBandit-v0": ContinuousBandit,
    "Probe-Chain-v0": Chain,
    "Probe-Constant-v0": Constant,
    "Probe-TimeLimit-v0": TimeLimit,
    "Probe-TwoArm-v0": TwoArm,
    "Probe-ObsDependent-v0": ObsDependent,
    "Probe-Terminate-v0": Terminate,
}

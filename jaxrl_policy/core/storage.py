"""Device-resident storage covering the on-/off-policy spectrum: a ring of K unrolls.

Shape legend: ``K`` stored unrolls, ``T`` time, ``E`` envs, ``R`` draws per learning step,
``B`` transitions per draw.

One ring ``[K, T, E, ...]`` serves every point of the spectrum; only the sampling mode changes:

- ``latest``: the unroll just added, ``[T, E, ...]`` (PPO, on-policy actor-critic; K = 1).
- ``unrolls``: ``[R, T, E, ...]``; draw 0 is the newest unroll, draws 1…R−1 are uniform over the
  filled slots (IMPALA-style replay of recent unrolls, needed by V-trace's sequence targets).
- ``transitions``: ``[R, B, ...]`` transitions uniform over the filled ``K·T·E`` slots (DQN's
  replay buffer; with T = 1 a slot is one vectorised env step).

Why our own ring rather than flashbax: the ring is ~40 lines, needs no extra dependency,
writes with one ``dynamic_update_slice`` per leaf and samples with one gather; learning always
samples after the iteration's ``add``, so the ring is never empty when sampled (an algorithm that
waits, DQN before ``learning_starts``, gates itself inside ``learn``). flashbax's trajectory
buffer adds sequence-sampling machinery we do not need.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxrl_policy.core.types import PyTree, Storage


class RingState(NamedTuple):
    data: PyTree  # pytree of [K, T, E, ...]
    pos: jax.Array  # int32 scalar: slot the next unroll goes to
    filled: jax.Array  # int32 scalar: filled slots (<= K)


def make_ring(capacity: int, mode: str, *, num_draws: int = 1, batch_size: int = 0) -> Storage:
    """A ring of ``capacity`` unrolls sampled in ``mode`` (see module docstring)."""
    if mode not in ("latest", "unrolls", "transitions"):
        raise ValueError(f"mode = {mode!r}: must be latest, unrolls or transitions")
    K = capacity

    def init(example):
        data = jax.tree.map(lambda x: jnp.zeros((K, *x.shape), x.dtype), example)
        return RingState(data=data, pos=jnp.zeros((), jnp.int32), filled=jnp.zeros((), jnp.int32))

    def add(state, unroll):
        if K == 1:  # on-policy: no ring, just the newest unroll
            data = jax.tree.map(lambda x: x[None], unroll)
        else:
            data = jax.tree.map(
                lambda buf, x: jax.lax.dynamic_update_index_in_dim(buf, x, state.pos, 0), state.data, unroll)
        return RingState(data=data, pos=(state.pos + 1) % K, filled=jnp.minimum(state.filled + 1, K))

    def newest(state):
        return (state.pos - 1) % K

    def sample(state, key):
        if mode == "latest":
            i = newest(state)
            return jax.tree.map(lambda x: x[i], state.data)
        if mode == "unrolls":
            age = jax.random.randint(key, (num_draws,), 0, jnp.maximum(state.filled, 1))
            # slot of the j-th newest unroll is (pos - 1 - j) % K; draw 0 is always the newest
            age = age.at[0].set(0)
            slots = (state.pos - 1 - age) % K
            return jax.tree.map(lambda x: x[slots], state.data)
        # transitions: uniform over the filled [filled, T, E]
        leaf = jax.tree.leaves(state.data)[0]
        T, E = leaf.shape[1], leaf.shape[2]
        n = num_draws * batch_size
        flat = jax.random.randint(key, (n,), 0, jnp.maximum(state.filled, 1) * T * E)
        # the filled slots are the `filled` newest ones ending at pos - 1
        age, rest = flat // (T * E), flat % (T * E)
        slot = (state.pos - 1 - age) % K
        t, e = rest // E, rest % E
        return jax.tree.map(lambda x: x[slot, t, e].reshape(num_draws, batch_size, *x.shape[3:]), state.data)

    return Storage(init=init, add=add, sample=sample)

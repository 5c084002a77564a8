"""Distillation losses (losses/distill.py) against numpy loops written from the papers' sums, eagerly,
under jit and vmap; zero at student = teacher; no gradient into the teacher; planted bugs caught."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_policy.core import losses as L
from jaxrl_policy.core.losses import distill as D

TOL = dict(rtol=1e-5, atol=1e-6)
T, A = 6, 4


def traj(seed):
    rng = np.random.default_rng(seed)
    s = rng.normal(scale=2.0, size=(T, A)).astype(np.float32)
    t = rng.normal(scale=2.0, size=(T, A)).astype(np.float32)
    t[1, 2] = -1e4  # an action the teacher never takes (p_T ≈ 0): must not give nan
    w = (rng.random(T) < 0.7).astype(np.float32)
    w[0] = 1.0
    return s, t, w


def softmax(x):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_loss(kind, s, t, w, beta=0.5):
    """Σ_t w_t D(π_T(·|s_t), π_S(·|s_t)) / Σ_t w_t with D summed action by action."""
    ps, pt = softmax(s), softmax(t)
    total = 0.0
    for i in range(T):
        d = 0.0
        for a in range(A):
            m = beta * pt[i, a] + (1 - beta) * ps[i, a]
            if kind == "forward" and pt[i, a] > 0:
                d += pt[i, a] * (np.log(pt[i, a]) - np.log(ps[i, a]))
            elif kind == "reverse":
                d += ps[i, a] * (np.log(ps[i, a]) - np.log(max(pt[i, a], 1e-300)))
            elif kind == "jsd":
                if pt[i, a] > 0:
                    d += beta * pt[i, a] * (np.log(pt[i, a]) - np.log(m))
                d += (1 - beta) * ps[i, a] * (np.log(ps[i, a]) - np.log(m))
        total += w[i] * d
    return total / w.sum()


def call(kind, s, t, w, beta=0.5):
    if kind == "jsd":
        return L.jsd_loss(s, t, beta=beta, w_t=w)
    return D.DIVERGENCES[kind](s, t, w_t=w)


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("kind", ["forward", "reverse", "jsd"])
@pytest.mark.parametrize("seed", [0, 1])
def test_distill_losses_match_reference(kind, seed, use_jit):
    s, t, w = traj(seed)
    if kind == "reverse":  # the reverse KL is +inf where π_T = 0 < π_S; keep the teacher's support full
        t[1, 2] = -3.0
    f = functools.partial(call, kind)
    f = jax.jit(f) if use_jit else f
    np.testing.assert_allclose(f(s, t, w), np_loss(kind, s, t, w), rtol=1e-4, atol=1e-5)
    # the forward KL's gradient is the cross-entropy's: (π_S − π_T) per state, weighted and averaged
    if kind == "forward":
        g = jax.grad(lambda x: L.forward_kl_loss(x, t, w))(s)
        np.testing.assert_allclose(g, w[:, None] * (softmax(s) - softmax(t)) / w.sum(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kind", ["forward", "reverse", "jsd"])
def test_distill_losses_zero_at_teacher_no_teacher_gradient_and_vmap(kind):
    s, t, w = traj(3)
    t[1, 2] = -3.0
    assert abs(float(call(kind, t, t, w))) < 1e-6
    assert abs(float(call(kind, t + 5.0, t, None))) < 1e-6  # logits are defined up to a constant
    assert float(call(kind, s, t, w)) > 1e-3
    g_t = jax.grad(lambda x: call(kind, s, x, w))(t)
    assert float(jnp.abs(g_t).max()) == 0.0  # the teacher is frozen
    g_s = jax.grad(lambda x: call(kind, x, t, w))(t)  # minimum: zero gradient at the teacher
    assert float(jnp.abs(g_s).max()) < 1e-6
    batch = jax.vmap(lambda a, b: call(kind, a, b, w))(np.stack([s, t]), np.stack([t, t]))
    np.testing.assert_allclose(batch, [np_loss(kind, s, t, w), 0.0], rtol=1e-4, atol=1e-5)


def test_jsd_interpolates_between_the_kls_and_catches_planted_bugs(monkeypatch):
    s, t, w = traj(4)
    t[1, 2] = -3.0
    # JSD(β) = β KL(π_T ‖ π_S) + O(β²) as β → 0 (the (1 − β) KL(π_S ‖ M) term is O(β²)): JSD(β)/β → forward KL
    eps = 1e-3
    slope = float(L.jsd_loss(s.astype(np.float32), t, beta=eps, w_t=w)) / eps
    np.testing.assert_allclose(slope, np_loss("forward", s, t, w), rtol=0.05)
    want = np_loss("forward", s, t, w)
    np.testing.assert_allclose(L.forward_kl_loss(s, t, w), want, rtol=1e-4)
    # planted bugs: KL arguments swapped; an unweighted mean; a teacher that carries a gradient
    real_kl = D.categorical_kl
    monkeypatch.setattr(D, "categorical_kl", lambda p, q: real_kl(q, p))
    assert not np.allclose(L.forward_kl_loss(s, t, w), want, rtol=1e-3)
    monkeypatch.setattr(D, "categorical_kl", real_kl)
    monkeypatch.setattr(D, "_weighted_mean", lambda x, w: jnp.mean(x))
    assert not np.allclose(L.forward_kl_loss(s, t, w), want, rtol=1e-3)
    monkeypatch.undo()
    monkeypatch.setattr(D.jax.lax, "stop_gradient", lambda x: x)
    assert float(jnp.abs(jax.grad(lambda x: L.forward_kl_loss(s, x, w))(t)).max()) > 0.0

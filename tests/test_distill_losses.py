"""Distillation losses (losses/distill.py) against numpy loops written from the papers' sums, eagerly,
under jit and vmap; zero at student = teacher; no gradient into the teacher; planted bugs caught.

Tolerances are float32 error bounds (tests/tolerance.py) against float64 references: ``divergence_rows``."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tolerance import FN, assert_within, gamma, log_softmax64, log_softmax_err, within

from jaxrl_policy.core import losses as L
from jaxrl_policy.core.losses import distill as D

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


def log_m(s, t, beta):
    """JSD's log m = logaddexp(log β + l_T, log(1 − β) + l_S) (float64) and the error of its float32 computation:
    σ_T·(E_T + γ_{FN+1}(|log β| + |l_T|)) + σ_S·(E_S + γ_{FN+1}(|log(1 − β)| + |l_S|)) + γ_{2FN+2}·(1 + |log m|),
    σ_T = β p_T / m and σ_S the weights of logaddexp's arguments (log β's log, +, then its exp and log1p)."""
    ls, lt, es, et = log_softmax64(s), log_softmax64(t), log_softmax_err(s), log_softmax_err(t)
    lb, l1b = np.log(beta), np.log1p(-beta)
    lm = np.logaddexp(lb + lt, l1b + ls)
    sig_t, sig_s = np.exp(lb + lt - lm), np.exp(l1b + ls - lm)
    return lm, (sig_t * (et + gamma(FN + 1) * (abs(lb) + np.abs(lt)))
                + sig_s * (es + gamma(FN + 1) * (abs(l1b) + np.abs(ls))) + gamma(2 * FN + 2) * (1 + np.abs(lm)))


def divergence_rows(kind, s, t, beta=0.5):
    """Per state: the divergence (float64) and a bound on its float32 computation.

    Each divergence is Σ_pairs c·Σ_a p_a (l_a − l'_a) with log-probabilities l, l' off by E (log_softmax_err) or,
    for JSD's log m, by Δlog m (``log_m``). A pair's error: Σ_a p_a·(|l − l'|·(E + γ_{FN+A+4}) + E + E') (p = exp l
    off by a relative E + FN·u; −, ×, the A − 1 additions, c's conversion to float32, c· and the pairs' sum).
    """
    ls, lt, es, et = log_softmax64(s), log_softmax64(t), log_softmax_err(s), log_softmax_err(t)
    ps, pt = np.exp(ls), np.exp(lt)
    if kind == "forward":
        pairs = [(1.0, pt, lt, et, ls, es)]
    elif kind == "reverse":
        pairs = [(1.0, ps, ls, es, lt, et)]
    else:
        lm, dlm = log_m(s, t, beta)
        pairs = [(beta, pt, lt, et, lm, dlm), (1 - beta, ps, ls, es, lm, dlm)]
    value = bound = 0.0
    for c, p, lx, ex, ly, ey in pairs:
        d = lx - ly
        value = value + c * np.where(p > 0, p * d, 0.0).sum(-1)
        bound = bound + c * np.where(p > 0, p * (np.abs(d) * (ex + gamma(FN + A + 4)) + ex + ey), 0.0).sum(-1)
    return value, bound


def loss_bound(kind, s, t, w, beta=0.5):
    """Σ_t w_t D_t / Σ_t w_t: the rows' bounds so weighted, + γ_{T+1} (w·, T − 1 additions, ÷) of Σ w|D| / Σ w."""
    w = np.ones(len(s)) if w is None else np.asarray(w, np.float64)
    value, bound = divergence_rows(kind, s, t, beta)
    return (w @ bound + gamma(len(s) + 1) * (w @ np.abs(value))) / w.sum()


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
    assert_within(f(s, t, w), np_loss(kind, s, t, w), loss_bound(kind, s, t, w))
    # the forward KL's gradient is the cross-entropy's: (π_S − π_T) per state, weighted and averaged
    if kind == "forward":
        g = jax.grad(lambda x: L.forward_kl_loss(x, t, w))(s)
        assert_within(g, w[:, None] * (softmax(s) - softmax(t)) / w.sum(), forward_grad_bound(s, t, w))


def forward_grad_bound(s, t, w):
    """The forward KL's float32 gradient c·(p_S·Σ_b p_T,b − p_T), c = w/Σw, computed through log_softmax's VJP: p_T
    and p_S = exp(log p) are off by a relative E + FN·u, Σ_b p_T,b by Σ_b p_T,b·E_T,b + γ_{FN+A}, and c, ×, −
    round: c·(p_T·(E_T + γ_{FN+3}) + p_S·(E_S + Σ_b p_T,b·E_T,b + γ_{2FN+A+3}))."""
    c = (np.asarray(w, np.float64) / np.sum(w))[:, None]
    ps, pt, es, et = softmax(s), softmax(t), log_softmax_err(s), log_softmax_err(t)
    pe = np.where(pt > 0, pt * et, 0.0).sum(-1, keepdims=True)
    return c * (pt * (et + gamma(FN + 3)) + ps * (es + pe + gamma(2 * FN + A + 3)))


def teacher_grad_bound(kind, t, w, beta=0.5):
    """At student = teacher the exact gradient is 0; the float32 one is c·(h − p·Σ_b h_b), h the cotangent of the
    student's log-probabilities. forward and reverse: h = ∓p (the same log_softmax on both sides, so log p_S −
    log p_T is exactly 0), leaving c·p·|1 − Σ p̂| ≤ c·p·(Σ_b p_b E_b + γ_{FN+A+3}). JSD: h = (1 − β)·p·(l − log m)
    + (1 − β)·p − m·σ_S is 0 but for log m's error (Δlog m, twice: in the difference and in σ_S = exp(log(1 − β)
    + l − log m)) and the roundings of its three terms (each ≤ (1 − β)·p·(1 + |l − log m|)): H ≤ (1 − β)·p·(2Δlog m
    + E + γ_{2FN+6}·(3 + |l − log m|)), and the gradient c·(H + p·Σ_b H_b)."""
    c = (np.asarray(w, np.float64) / np.sum(w))[:, None]
    lt, et = log_softmax64(t), log_softmax_err(t)
    p = np.exp(lt)
    if kind != "jsd":
        return c * p * ((p * et).sum(-1, keepdims=True) + gamma(FN + A + 3))
    lm, dlm = log_m(t, t, beta)
    h = (1 - beta) * p * (2 * dlm + et + gamma(2 * FN + 6) * (3 + np.abs(lt - lm)))
    return c * (h + p * h.sum(-1, keepdims=True))


@pytest.mark.parametrize("kind", ["forward", "reverse", "jsd"])
def test_distill_losses_zero_at_teacher_no_teacher_gradient_and_vmap(kind):
    s, t, w = traj(3)
    t[1, 2] = -3.0
    if kind == "jsd":  # log m = logaddexp(log β + l, log(1 − β) + l) is l only up to its rounding
        assert_within(call(kind, t, t, w), 0.0, loss_bound(kind, t, t, w))
    else:  # the same log_softmax of the same logits on both sides: every log p − log q is exactly 0
        np.testing.assert_array_equal(call(kind, t, t, w), 0.0)
    # logits are defined up to a constant: the divergence of t + 5 (rounded to float32) from t is ~1e-14 in
    # float64, and ours is within its float32 bound of that
    ones = np.ones(T, np.float32)
    assert_within(call(kind, t + 5.0, t, None), np_loss(kind, t + 5.0, t, ones), loss_bound(kind, t + 5.0, t, None))
    assert float(call(kind, s, t, w)) > 1e-3
    g_t = jax.grad(lambda x: call(kind, s, x, w))(t)
    assert float(jnp.abs(g_t).max()) == 0.0  # the teacher is frozen
    g_s = jax.grad(lambda x: call(kind, x, t, w))(t)  # minimum: zero gradient at the teacher
    assert_within(g_s, 0.0, teacher_grad_bound(kind, t, w))
    batch = jax.vmap(lambda a, b: call(kind, a, b, w))(np.stack([s, t]), np.stack([t, t]))
    assert_within(batch, [np_loss(kind, s, t, w), 0.0], [loss_bound(kind, s, t, w), loss_bound(kind, t, t, w)])


def test_jsd_interpolates_between_the_kls_and_catches_planted_bugs(monkeypatch):
    s, t, w = traj(4)
    t[1, 2] = -3.0
    # JSD(β) = β KL(π_T ‖ π_S) + O(β²) as β → 0 (the (1 − β) KL(π_S ‖ M) term is O(β²)): JSD(β)/β → forward KL
    eps = 1e-3
    slope = float(L.jsd_loss(s.astype(np.float32), t, beta=eps, w_t=w)) / eps
    want = np_loss("forward", s, t, w)
    exact_slope = np_loss("jsd", s, t, w, beta=eps) / eps
    assert_within(slope, exact_slope, loss_bound("jsd", s, t, w, beta=eps) / eps)  # float32 rounding, ÷β
    # expanding log(1 + β(p_T − p_S)/p_S): JSD(β)/β = KL(π_T ‖ π_S) − β·χ²(π_T ‖ π_S)/2 + O(β²) (weighted over
    # states); within β·χ², twice the leading term (at β = 10⁻³ the higher orders move it by 3% here)
    ps, pt = softmax(s), softmax(t)
    chi2 = w @ ((pt - ps) ** 2 / ps).sum(-1) / w.sum()
    assert_within(exact_slope, want, eps * chi2)
    bound = loss_bound("forward", s, t, w)
    assert_within(L.forward_kl_loss(s, t, w), want, bound)
    # planted bugs: KL arguments swapped; an unweighted mean; a teacher that carries a gradient
    real_kl = D.categorical_kl
    monkeypatch.setattr(D, "categorical_kl", lambda p, q: real_kl(q, p))
    assert not within(L.forward_kl_loss(s, t, w), want, bound)
    monkeypatch.setattr(D, "categorical_kl", real_kl)
    monkeypatch.setattr(D, "_weighted_mean", lambda x, w: jnp.mean(x))
    assert not within(L.forward_kl_loss(s, t, w), want, bound)
    monkeypatch.undo()
    monkeypatch.setattr(D.jax.lax, "stop_gradient", lambda x: x)
    assert float(jnp.abs(jax.grad(lambda x: L.forward_kl_loss(s, x, w))(t)).max()) > 0.0

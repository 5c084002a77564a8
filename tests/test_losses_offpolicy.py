"""Tests for the off-policy losses: Peng's Q(λ) (losses/q_lambda.py), SAC and TD3 (losses/continuous.py).

Each function is checked against (a) a plain float64 numpy/python loop written from the paper's equations, eagerly,
under jax.jit and under jax.vmap; (b) small cases worked out by hand; (c) rlax.q_lambda where it computes the same
quantity. Float32 results are compared with bounds derived from the computation (tests/tolerance.py: u = 2⁻²⁴,
γ_n = n·u/(1 − n·u), times the sum of the terms' magnitudes), and each comparison is shown to fail on a version of
the code with a planted bug. Planted bugs run eagerly: a jitted function would reuse its trace from before the patch.
"""
import importlib
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax
from tolerance import FN, assert_within, gamma, within

from jaxrl_policy.core import distributions as dist
from jaxrl_policy.core import losses as L

# the modules, not the functions: once losses/__init__ exports q_lambda, `losses.q_lambda` names the function
QL = importlib.import_module("jaxrl_policy.core.losses.q_returns")
C = importlib.import_module("jaxrl_policy.core.losses.continuous")

T, A = 7, 4  # trajectory length, discrete actions
B, D = 16, 3  # minibatch (a power of two: 1/B is exact), action dimensions
U64 = 2.0 ** -53  # the float64 references' unit roundoff


def maybe_jit(fn, use_jit):
    return jax.jit(fn) if use_jit else fn


class JnpWith:
    """jax.numpy with some functions replaced: plants a bug in one module (monkeypatch its ``jnp``)."""

    def __init__(self, **replaced):
        self.__dict__.update(replaced)

    def __getattr__(self, name):
        return getattr(jnp, name)


def f32(x):
    return np.asarray(x, np.float32)


def f64(x):
    return np.asarray(x, np.float64)


# ---------------------------------------------------------------------------
# Peng's Q(λ).
# ---------------------------------------------------------------------------

def make_q_traj(seed, truncations=False, length=T):
    """A random rollout with a mid-way termination, a live last step and optional truncations.

    q_t is q_tm1 shifted by one with a final bootstrap row, except at truncations, where q_t[t] holds the Q-values of
    the true final observation and differs from q_tm1[t+1] (the reset observation's).
    """
    rng = np.random.default_rng(seed)
    terminated = rng.random(length) < 0.2
    terminated[length // 2] = True  # always at least one termination mid-way
    terminated[-1] = False  # the last step bootstraps (its λ-bug is visible)
    trunc = np.zeros(length, bool)
    if truncations:
        trunc = (rng.random(length) < 0.3) & ~terminated
        trunc[1], terminated[1] = True, False
    q_tm1 = rng.normal(size=(length, A))
    q_t = np.concatenate([q_tm1[1:], rng.normal(size=(1, A))])
    q_t[trunc] = rng.normal(loc=2.0, size=(trunc.sum(), A))  # true final observations
    return dict(
        q_tm1=f32(q_tm1), a_tm1=rng.integers(0, A, size=length).astype(np.int32), r_t=f32(rng.normal(size=length)),
        discount_t=f32(0.9 * (1.0 - terminated)), q_t=f32(q_t), lambda_vec=f32(rng.uniform(0.3, 1.0, size=length)),
        truncated_t=trunc)


def lam_for(traj, kind):
    return np.float32(0.8) if kind == "scalar" else traj["lambda_vec"]


def np_q_lambda_returns(r_t, discount_t, q_t, lambda_, truncated_t=None):
    """Gallici et al. 2025, Alg. 1 as purejaxql's _get_target writes it, in float64:
    G_t = r_t + γ_t·max_a Q(s_{t+1}, a) + γ_t·λ_t·(G_{t+1} − max_a Q(s_{t+1}, a)); the last step and truncations
    stop at the one-step target r_t + γ_t·max_a q_t[t]."""
    n = len(r_t)
    lam = np.broadcast_to(f64(lambda_), (n,))
    trunc = np.zeros(n, bool) if truncated_t is None else np.asarray(truncated_t, bool)
    m = f64(q_t).max(-1)
    g = np.zeros(n)
    for t in reversed(range(n)):
        one_step = float(r_t[t]) + float(discount_t[t]) * m[t]
        g[t] = one_step if (t == n - 1 or trunc[t]) else one_step + float(discount_t[t]) * lam[t] * (g[t + 1] - m[t])
    return g


def q_lambda_magnitude(r_t, discount_t, q_t, lambda_, truncated_t=None):
    """M_t = Σ_{k≥t} (Π_{t≤j<k} |γ_j λ_j c_j|)·(|r_k| + |γ_k (1 − λ_k c_k) max_a q_t[k]|): the recursion on magnitudes,
    the sum of the absolute values of the terms G_t adds up (c_j = 0 at truncations and at the last step)."""
    n = len(r_t)
    c = np.ones(n) if truncated_t is None else 1.0 - np.asarray(truncated_t, np.float64)
    c[-1] = 0.0
    trace = np.broadcast_to(f64(lambda_), (n,)) * c
    d = np.abs(f64(discount_t))
    x = np.abs(f64(r_t)) + d * np.abs((1.0 - trace) * f64(q_t).max(-1))
    acc, out = 0.0, np.zeros(n)
    for t in reversed(range(n)):
        acc = x[t] + d[t] * trace[t] * acc
        out[t] = acc
    return out


def q_lambda_rounds(n):
    """Roundings along one term of G_t, either code path: 4 form x_k = r_k + γ_k(1 − λ_k c_k)·max q (− · · +); then per
    step back the sequential scan adds 3 (decay γλc, × acc, + x), while the associative scan multiplies ≤ n decays
    (1 each) and passes ≤ 2⌈log₂ n⌉ compose levels (≤ 3 each). The sum of both counts bounds either."""
    return 4 + 3 * n + 6 * math.ceil(math.log2(max(n, 2)))


def q_lambda_bound(tr, lam, trunc):
    m = q_lambda_magnitude(tr["r_t"], tr["discount_t"], tr["q_t"], lam, trunc)
    # Higham (3.5) per term: float32 within γ_n·M_t; the float64 reference adds γ_n(u64)·M_t
    return (gamma(q_lambda_rounds(len(m))) + gamma(q_lambda_rounds(len(m)), U64)) * m


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("truncations", [False, True])
@pytest.mark.parametrize("lam_kind", ["scalar", "vector"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_q_lambda_returns_matches_reference(seed, lam_kind, truncations, use_jit):
    tr = make_q_traj(seed, truncations)
    lam = lam_for(tr, lam_kind)
    trunc = tr["truncated_t"] if truncations else None
    got = maybe_jit(QL.q_lambda_returns, use_jit)(
        r_t=tr["r_t"], discount_t=tr["discount_t"], q_t=tr["q_t"], lambda_=lam, truncated_t=trunc)
    want = np_q_lambda_returns(tr["r_t"], tr["discount_t"], tr["q_t"], lam, trunc)
    assert_within(got, want, q_lambda_bound(tr, lam, trunc))
    # the TD errors: one more rounding, u·(|G| + |Q(s, a)|)
    td = maybe_jit(QL.q_lambda, use_jit)(
        q_tm1=tr["q_tm1"], a_tm1=tr["a_tm1"], r_t=tr["r_t"], discount_t=tr["discount_t"], q_t=tr["q_t"],
        lambda_=lam, truncated_t=trunc)
    qa = f64(tr["q_tm1"])[np.arange(T), tr["a_tm1"]]
    assert_within(td, want - qa, q_lambda_bound(tr, lam, trunc) + gamma(1) * (np.abs(want) + np.abs(qa)))


@pytest.mark.parametrize("truncations", [False, True])
def test_q_lambda_returns_accelerator_path_matches_reference(truncations, monkeypatch):
    """With the backend reported as a GPU, the recursion runs as an associative scan: same bound."""
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    for seed, length in ((0, 2), (1, T), (2, 33)):
        tr = make_q_traj(seed, truncations, length)
        trunc = tr["truncated_t"] if truncations else None
        got = QL.q_lambda_returns(r_t=tr["r_t"], discount_t=tr["discount_t"], q_t=tr["q_t"],
                                  lambda_=tr["lambda_vec"], truncated_t=trunc)
        want = np_q_lambda_returns(tr["r_t"], tr["discount_t"], tr["q_t"], tr["lambda_vec"], trunc)
        assert_within(got, want, q_lambda_bound(tr, tr["lambda_vec"], trunc), err_msg=f"T={length}")


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("lam", [np.float32(0.0), np.float32(0.7), np.float32(1.0), "vector"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_q_lambda_matches_rlax(seed, lam, use_jit):
    tr = make_q_traj(seed)  # no truncations: where rlax and this code compute the same quantity
    lam = tr["lambda_vec"] if isinstance(lam, str) else lam
    args = (tr["q_tm1"], tr["a_tm1"], tr["r_t"], tr["discount_t"], tr["q_t"], lam)
    got = maybe_jit(QL.q_lambda, use_jit)(
        q_tm1=tr["q_tm1"], a_tm1=tr["a_tm1"], r_t=tr["r_t"], discount_t=tr["discount_t"], q_t=tr["q_t"], lambda_=lam)
    oracle = rlax.q_lambda(*args)
    qa = f64(tr["q_tm1"])[np.arange(T), tr["a_tm1"]]
    g = np_q_lambda_returns(tr["r_t"], tr["discount_t"], tr["q_t"], lam)
    # both float32: each within γ_n·M_t + u(|G| + |Q(s,a)|) of the exact value (n = q_lambda_rounds(T) ≥ rlax's 4 a step
    # + 4), so their difference within twice that
    bound = 2 * (gamma(q_lambda_rounds(T)) * q_lambda_magnitude(tr["r_t"], tr["discount_t"], tr["q_t"], lam)
                 + gamma(1) * (np.abs(g) + np.abs(qa)))
    assert_within(got, oracle, bound)


def test_q_lambda_vmap():
    trajs = [make_q_traj(s, truncations=True) for s in range(4)]
    batch = {k: np.stack([t[k] for t in trajs]) for k in trajs[0]}
    fn = jax.jit(jax.vmap(lambda q0, a, r, d, q1, lam, tr: QL.q_lambda(
        q_tm1=q0, a_tm1=a, r_t=r, discount_t=d, q_t=q1, lambda_=lam, truncated_t=tr)))
    got = fn(batch["q_tm1"], batch["a_tm1"], batch["r_t"], batch["discount_t"], batch["q_t"], batch["lambda_vec"],
             batch["truncated_t"])
    assert got.shape == (4, T)
    for b, t in enumerate(trajs):
        want = np_q_lambda_returns(t["r_t"], t["discount_t"], t["q_t"], t["lambda_vec"], t["truncated_t"])
        qa = f64(t["q_tm1"])[np.arange(T), t["a_tm1"]]
        bound = q_lambda_bound(t, t["lambda_vec"], t["truncated_t"]) + gamma(1) * (np.abs(want) + np.abs(qa))
        assert_within(got[b], want - qa, bound, err_msg=f"row {b}")
    # and the returns with a scalar λ shared across the batch
    g = jax.vmap(lambda r, d, q1: QL.q_lambda_returns(r_t=r, discount_t=d, q_t=q1, lambda_=0.5))(
        batch["r_t"], batch["discount_t"], batch["q_t"])
    for b, t in enumerate(trajs):
        assert_within(g[b], np_q_lambda_returns(t["r_t"], t["discount_t"], t["q_t"], 0.5),
                      q_lambda_bound(t, 0.5, None))


# γ = λ = 0.5, r = 1 everywhere, T = 3, q_t = [[4, 0], [2, 6], [8, 1]] so max_a q_t = [4, 6, 8]. Every value and every
# intermediate below is a short dyadic fraction, exact in float32: the hand cases are compared for equality.
HAND = dict(r_t=jnp.ones(3), discount_t=jnp.full(3, 0.5), q_t=jnp.array([[4.0, 0.0], [2.0, 6.0], [8.0, 1.0]]))


def test_q_lambda_returns_hand():
    # G2 = 1 + 0.5·8 = 5 (the last step bootstraps fully from max_a Q(s_T, a))
    # G1 = 1 + 0.5·(0.5·6 + 0.5·5) = 3.75;  G0 = 1 + 0.5·(0.5·4 + 0.5·3.75) = 2.9375
    # (λ applied at the last step too would give G2 = 1 + 0.5·0.5·8 = 3)
    np.testing.assert_array_equal(QL.q_lambda_returns(lambda_=0.5, **HAND), [2.9375, 3.75, 5.0])
    # λ = 0: one-step Q-learning targets r + γ·max_a q_t = [3, 4, 5]
    np.testing.assert_array_equal(QL.q_lambda_returns(lambda_=0.0, **HAND), [3.0, 4.0, 5.0])
    # λ = 1: the discounted Monte-Carlo return bootstrapped at the end: 1 + 0.5 + 0.25 + 0.125·8 = 2.75, 1 + 0.5·5, 5
    # (no intermediate max_a q_t enters)
    np.testing.assert_array_equal(QL.q_lambda_returns(lambda_=1.0, **HAND), [2.75, 3.5, 5.0])


def test_q_lambda_returns_termination_and_truncation_hand():
    # A termination after step 1 (discount_1 = 0) zeroes its bootstrap and the trace through it:
    #   G2 = 5;  G1 = 1;  G0 = 1 + 0.5·(0.5·4 + 0.5·1) = 2.25
    term = {**HAND, "discount_t": jnp.array([0.5, 0.0, 0.5])}
    np.testing.assert_array_equal(QL.q_lambda_returns(lambda_=0.5, **term), [2.25, 1.0, 5.0])
    # A truncation after step 0: q_t[0] = [4, 0] is Q(true final obs), the reset obs (q_tm1[1]) may be anything.
    #   G0 = 1 + 0.5·4 = 3 (bootstraps from the final obs, trace cut); G1, G2 as without it.
    # Without the cut G0 = 2.9375 (above); treating the truncation as a termination (purejaxql) gives G0 = 1.
    got = QL.q_lambda_returns(lambda_=0.5, truncated_t=jnp.array([True, False, False]), **HAND)
    np.testing.assert_array_equal(got, [3.0, 3.75, 5.0])
    got_f = QL.q_lambda_returns(lambda_=0.5, truncated_t=jnp.array([1.0, 0.0, 0.0]), **HAND)  # float flags too
    np.testing.assert_array_equal(got_f, [3.0, 3.75, 5.0])
    # A truncation at the last step changes nothing: the rollout's end already bootstraps fully.
    last = QL.q_lambda_returns(lambda_=0.5, truncated_t=jnp.array([False, False, True]), **HAND)
    np.testing.assert_array_equal(last, [2.9375, 3.75, 5.0])
    # TD errors: G − Q(s_t, a_t) with q_tm1 = [[1, 2], [0, 3], [5, 5]], a = [1, 0, 1]: [2.9375 − 2, 3.75 − 0, 5 − 5]
    td = QL.q_lambda(q_tm1=jnp.array([[1.0, 2.0], [0.0, 3.0], [5.0, 5.0]]), a_tm1=jnp.array([1, 0, 1]),
                     lambda_=0.5, **HAND)
    np.testing.assert_array_equal(td, [0.9375, 3.75, 0.0])


@pytest.mark.parametrize("seed", [0, 1])
def test_q_lambda_at_zero_is_q_learning(seed):
    """λ = 0: every step is the one-step Q-learning TD error of losses.q_learning (vmapped over T)."""
    tr = make_q_traj(seed, truncations=True)
    got = QL.q_lambda(q_tm1=tr["q_tm1"], a_tm1=tr["a_tm1"], r_t=tr["r_t"], discount_t=tr["discount_t"],
                      q_t=tr["q_t"], lambda_=np.float32(0.0), truncated_t=tr["truncated_t"])
    want = jax.vmap(lambda q0, a, r, d, q1: L.q_learning(q_tm1=q0, a_tm1=a, r_t=r, discount_t=d, q_t=q1))(
        tr["q_tm1"], tr["a_tm1"], tr["r_t"], tr["discount_t"], tr["q_t"])
    g = np.abs(f64(tr["r_t"])) + np.abs(f64(tr["discount_t"]) * f64(tr["q_t"]).max(-1))
    qa = np.abs(f64(tr["q_tm1"])[np.arange(T), tr["a_tm1"]])
    # each side: r + γ·(1 − 0)·m − q (≤ 4 roundings) vs r + γ·m − q (3): within (γ_4 + γ_3)(|r| + |γm| + |q|)
    assert_within(got, want, (gamma(4) + gamma(3)) * (g + qa))


def test_q_lambda_monte_carlo_at_one():
    """λ = 1 inside one episode (no cuts): G_t = Σ_{k≥t} γ^{k−t} r_k + γ^{T−t} max_a q_t[T−1]."""
    tr = make_q_traj(3)
    disc = np.full(T, np.float32(0.9))
    r, m = f64(tr["r_t"]), f64(tr["q_t"]).max(-1)
    g_mc = np.array([sum(0.9 ** (k - t) * r[k] for k in range(t, T)) + 0.9 ** (T - t) * m[-1] for t in range(T)])
    got = QL.q_lambda_returns(r_t=tr["r_t"], discount_t=disc, q_t=tr["q_t"], lambda_=np.float32(1.0))
    mag = np.array([sum(0.9 ** (k - t) * abs(r[k]) for k in range(t, T)) + 0.9 ** (T - t) * abs(m[-1])
                    for t in range(T)])
    # f32(0.9) ≠ 0.9: the powers γ^j carry j·|f32(0.9) − 0.9|/0.9 ≤ j·u relative, under the same γ_n·M bound
    assert_within(got, g_mc, gamma(q_lambda_rounds(T) + T) * mag)


def test_q_lambda_targets_carry_no_gradient():
    tr = make_q_traj(0, truncations=True)

    def total(q_tm1, r_t, q_t):
        return jnp.sum(QL.q_lambda(q_tm1=q_tm1, a_tm1=tr["a_tm1"], r_t=r_t, discount_t=tr["discount_t"], q_t=q_t,
                                   lambda_=np.float32(0.9), truncated_t=tr["truncated_t"]))

    g_q0, g_r, g_q1 = jax.grad(total, argnums=(0, 1, 2))(tr["q_tm1"], tr["r_t"], tr["q_t"])
    np.testing.assert_array_equal(g_r, np.zeros(T))
    np.testing.assert_array_equal(g_q1, np.zeros((T, A)))
    np.testing.assert_array_equal(g_q0, -np.eye(A)[tr["a_tm1"]])  # only Q(s_t, a_t) moves, by −1


def test_q_lambda_catches_planted_bugs(monkeypatch):
    """The reference comparison fails if λ is applied at the last step, if the trace is not cut at truncations, if max
    is replaced by mean, or if the targets carry a gradient."""
    tr = make_q_traj(1, truncations=True)
    lam = tr["lambda_vec"]
    kw = dict(r_t=tr["r_t"], discount_t=tr["discount_t"], q_t=tr["q_t"], lambda_=lam, truncated_t=tr["truncated_t"])
    want = np_q_lambda_returns(tr["r_t"], tr["discount_t"], tr["q_t"], lam, tr["truncated_t"])
    bound = q_lambda_bound(tr, lam, tr["truncated_t"])
    assert within(QL.q_lambda_returns(**kw), want, bound)  # the real code passes
    real_not_truncated = QL._not_truncated

    def lambda_at_last_step(truncated_t, like):  # the trace continues past the rollout's end (into G_T = 0)
        return real_not_truncated(truncated_t, like)

    def trace_through_truncations(truncated_t, like):  # truncations bootstrap but do not cut the trace
        return real_not_truncated(None, like).at[-1].set(0.0)

    for bug in (lambda_at_last_step, trace_through_truncations):
        monkeypatch.setattr(QL, "_trace_continues", bug)
        assert not within(QL.q_lambda_returns(**kw), want, bound), bug.__name__
        monkeypatch.undo()
    monkeypatch.setattr(QL, "jnp", JnpWith(max=jnp.mean))
    assert not within(QL.q_lambda_returns(**kw), want, bound), "max replaced by mean"
    monkeypatch.undo()
    monkeypatch.setattr(QL.jax.lax, "stop_gradient", lambda x: x)
    g = jax.grad(lambda q1: jnp.sum(QL.q_lambda_returns(**{**kw, "q_t": q1})))(tr["q_t"])
    assert np.abs(g).max() > 0, "targets without stop_gradient carry a gradient"


# ---------------------------------------------------------------------------
# SAC and TD3 targets.
# ---------------------------------------------------------------------------

def make_batch(seed, n=B):
    rng = np.random.default_rng(seed)
    terminated = rng.random(n) < 0.2
    terminated[0] = True  # at least one terminal transition
    return dict(
        r_t=f32(rng.normal(size=n)), discount_t=f32(0.99 * (1.0 - terminated)),
        q1_t=f32(rng.normal(loc=3.0, size=n)), q2_t=f32(rng.normal(loc=3.0, size=n)),
        log_prob_t=f32(rng.normal(loc=-2.0, scale=1.5, size=n)), alpha=np.float32(rng.uniform(0.05, 0.5)))


def np_sac_target(r, d, q1, q2, lp, alpha):
    """Haarnoja et al. 2018b, eqs. 3, 5: y = r + γ(1 − done)·(min_i Q_i'(s', a') − α log π(a'|s')), one transition."""
    return [float(ri) + float(di) * (min(float(a), float(b)) - float(alpha) * float(li))
            for ri, di, a, b, li in zip(r, d, q1, q2, lp, strict=True)]


def sac_target_bound(b):
    # r + γ·(min − α·lp): the α·lp term passes 4 roundings (×, −, ×, +): γ_4 × the terms' magnitudes
    q = np.minimum(f64(b["q1_t"]), f64(b["q2_t"]))
    soft_v = np.abs(q) + np.abs(b["alpha"] * f64(b["log_prob_t"]))
    return gamma(4) * (np.abs(b["r_t"]) + np.abs(b["discount_t"]) * soft_v)


def td3_target_bound(b):
    # r + γ·min: 2 roundings (×, +)
    return gamma(2) * (np.abs(b["r_t"]) + np.abs(b["discount_t"]) * np.abs(np.minimum(b["q1_t"], b["q2_t"])))


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sac_critic_target_matches_reference(seed, use_jit):
    b = make_batch(seed)
    want = np_sac_target(b["r_t"], b["discount_t"], b["q1_t"], b["q2_t"], b["log_prob_t"], b["alpha"])
    fn = maybe_jit(C.sac_critic_target, use_jit)
    args = dict(r_t=b["r_t"], discount_t=b["discount_t"], q1_t=b["q1_t"], q2_t=b["q2_t"],
                next_log_prob_t=b["log_prob_t"], alpha=b["alpha"])
    assert_within(fn(**args), want, sac_target_bound(b), err_msg="[B]")
    # one transition at a time (scalars), vmapped over the batch with a shared α
    per = maybe_jit(jax.vmap(lambda r, d, q1, q2, lp: C.sac_critic_target(
        r_t=r, discount_t=d, q1_t=q1, q2_t=q2, next_log_prob_t=lp, alpha=b["alpha"])), use_jit)
    assert_within(per(b["r_t"], b["discount_t"], b["q1_t"], b["q2_t"], b["log_prob_t"]), want, sac_target_bound(b),
                  err_msg="vmap")
    # a terminal transition's target is its reward alone
    i = int(np.argmin(b["discount_t"]))
    assert b["discount_t"][i] == 0 and fn(**args)[i] == b["r_t"][i]


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_td3_target_matches_reference(seed, use_jit):
    b = make_batch(seed)
    want = [float(r) + float(d) * min(float(q1), float(q2))  # Fujimoto et al. 2018, eq. 10
            for r, d, q1, q2 in zip(b["r_t"], b["discount_t"], b["q1_t"], b["q2_t"], strict=True)]
    fn = maybe_jit(C.td3_target, use_jit)
    assert_within(fn(r_t=b["r_t"], discount_t=b["discount_t"], q1_t=b["q1_t"], q2_t=b["q2_t"]), want,
                  td3_target_bound(b))
    per = maybe_jit(jax.vmap(lambda r, d, q1, q2: C.td3_target(r_t=r, discount_t=d, q1_t=q1, q2_t=q2)), use_jit)
    assert_within(per(b["r_t"], b["discount_t"], b["q1_t"], b["q2_t"]), want, td3_target_bound(b), err_msg="vmap")


def test_targets_hand_and_no_gradient():
    # r = 1, γ = 0.5, Q1' = 4, Q2' = 6, log π = −2, α = 0.25: SAC y = 1 + 0.5·(4 + 0.5) = 3.25; TD3 y = 1 + 0.5·4 = 3
    # (with max instead of min: 4.25 and 4). Dyadic: exact.
    kw = dict(r_t=jnp.array([1.0]), discount_t=jnp.array([0.5]), q1_t=jnp.array([4.0]), q2_t=jnp.array([6.0]))
    np.testing.assert_array_equal(C.sac_critic_target(next_log_prob_t=jnp.array([-2.0]), alpha=0.25, **kw), [3.25])
    np.testing.assert_array_equal(C.td3_target(**kw), [3.0])
    b = make_batch(0)

    def sac_total(r, q1, q2, lp, alpha):
        return jnp.sum(C.sac_critic_target(r_t=r, discount_t=b["discount_t"], q1_t=q1, q2_t=q2,
                                           next_log_prob_t=lp, alpha=alpha))

    for g in jax.grad(sac_total, argnums=(0, 1, 2, 3, 4))(b["r_t"], b["q1_t"], b["q2_t"], b["log_prob_t"],
                                                          b["alpha"]):
        assert np.abs(g).max() == 0.0
    g = jax.grad(lambda q1, q2: jnp.sum(C.td3_target(r_t=b["r_t"], discount_t=b["discount_t"], q1_t=q1, q2_t=q2)),
                 argnums=(0, 1))(b["q1_t"], b["q2_t"])
    assert np.abs(g[0]).max() == 0.0 and np.abs(g[1]).max() == 0.0


def test_targets_catch_planted_min_as_max(monkeypatch):
    b = make_batch(1)
    sac = dict(r_t=b["r_t"], discount_t=b["discount_t"], q1_t=b["q1_t"], q2_t=b["q2_t"],
               next_log_prob_t=b["log_prob_t"], alpha=b["alpha"])
    td3 = dict(r_t=b["r_t"], discount_t=b["discount_t"], q1_t=b["q1_t"], q2_t=b["q2_t"])
    want_sac = np_sac_target(b["r_t"], b["discount_t"], b["q1_t"], b["q2_t"], b["log_prob_t"], b["alpha"])
    want_td3 = [float(r) + float(d) * min(float(q1), float(q2))
                for r, d, q1, q2 in zip(b["r_t"], b["discount_t"], b["q1_t"], b["q2_t"], strict=True)]
    assert within(C.sac_critic_target(**sac), want_sac, sac_target_bound(b))
    assert within(C.td3_target(**td3), want_td3, td3_target_bound(b))
    monkeypatch.setattr(C, "jnp", JnpWith(minimum=jnp.maximum))  # the twin critics' max: overestimation again
    assert not within(C.sac_critic_target(**sac), want_sac, sac_target_bound(b))
    assert not within(C.td3_target(**td3), want_td3, td3_target_bound(b))


# ---------------------------------------------------------------------------
# Target-policy smoothing.
# ---------------------------------------------------------------------------

LOW, HIGH = f32([-1.0, 0.0, -2.0]), f32([1.0, 3.0, 2.0])  # half-ranges h = [1, 1.5, 2]


def np_smoothed(z, mu, sigma, c, low, high):
    """Fujimoto et al. 2018, eq. 15, σ and c in units of the half-range h: clip(μ + h·clip(σz, −c, c), low, high)."""
    z, mu, low, high = f64(z), f64(mu), f64(low), f64(high)
    h = (high - low) / 2
    return np.clip(mu + h * np.clip(float(sigma) * z, -float(c), float(c)), low, high), h * np.abs(float(sigma) * z)


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("sigma,c", [(0.2, 0.5), (2.0, 0.3)])  # the paper's values; and one where the clip binds
def test_smoothed_target_action_matches_reference(sigma, c, use_jit):
    rng = np.random.default_rng(0)
    mu = f32(rng.uniform(LOW, HIGH, size=(B, D)))
    key = jax.random.PRNGKey(3)
    got = maybe_jit(C.smoothed_target_action, use_jit)(
        key=key, mu_t=mu, noise_std=np.float32(sigma), noise_clip=np.float32(c), low=LOW, high=HIGH)
    z = jax.random.normal(key, (B, D), jnp.float32)  # the implementation's one draw
    want, noise = np_smoothed(z, mu, np.float32(sigma), np.float32(c), LOW, HIGH)
    # h = (high − low)/2 (1 rounding), σz (1), × h (1), μ + (1); both clips are exact and 1-Lipschitz
    bound = gamma(4) * (np.abs(mu) + noise)
    assert_within(got, want, bound)
    assert np.all(got >= LOW) and np.all(got <= HIGH)
    # where the final clip did not bind, |ã − μ| ≤ c·h (up to the same rounding)
    inside = (f64(got) > LOW) & (f64(got) < HIGH)
    limit = float(np.float32(c)) * (f64(HIGH) - f64(LOW)) / 2 + bound
    assert np.all((np.abs(f64(got) - mu) <= limit)[inside])
    # one key per transition under vmap: row b is the unbatched call with key b
    keys = jax.random.split(key, B)
    per = maybe_jit(jax.vmap(lambda k, m: C.smoothed_target_action(
        key=k, mu_t=m, noise_std=np.float32(sigma), noise_clip=np.float32(c), low=LOW, high=HIGH)), use_jit)(keys, mu)
    for i in (0, B - 1):
        want_i, noise_i = np_smoothed(jax.random.normal(keys[i], (D,), jnp.float32), mu[i], np.float32(sigma),
                                      np.float32(c), LOW, HIGH)
        assert_within(per[i], want_i, gamma(4) * (np.abs(mu[i]) + noise_i))


def test_smoothed_target_action_noise_is_in_half_range_units():
    """With the bounds and c far away, ã − μ = h·σ·z: its standard deviation is σ·h per dimension (the paper's σ for
    actions in [−1, 1]), not σ. Statistical: n = 2¹⁶ draws, the sample std's relative error has sd 1/√(2n) ≈ 0.28%, so
    5% is > 17 sd away (a noise not scaled by h is off by 33% and 50% in the dimensions with h = 1.5 and 2)."""
    n, sigma = 2 ** 16, 0.1
    low, high = f32([-1.0, -1.5, -2.0]), f32([1.0, 1.5, 2.0])
    a = C.smoothed_target_action(key=jax.random.PRNGKey(0), mu_t=jnp.zeros((n, D)), noise_std=sigma,
                                 noise_clip=100.0, low=low, high=high)
    np.testing.assert_allclose(np.std(f64(a), axis=0), sigma * (high - low) / 2, rtol=0.05)


# ---------------------------------------------------------------------------
# Actor and temperature losses.
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_actor_and_temperature_losses_match_reference(seed, use_jit):
    b = make_batch(seed)
    q1, q2, lp, alpha = b["q1_t"], b["q2_t"], b["log_prob_t"], b["alpha"]
    terms = [float(alpha) * float(li) - min(float(a), float(c)) for a, c, li in zip(q1, q2, lp, strict=True)]
    mag = np.mean(np.abs(alpha * f64(lp)) + np.abs(np.minimum(q1, q2)))
    # per term 2 roundings (×, −), a sum of B terms in any order (B − 1), ÷ B (1): γ_{B+2} × the mean magnitude
    assert_within(maybe_jit(C.sac_actor_loss, use_jit)(q1=q1, q2=q2, log_prob=lp, alpha=alpha), np.mean(terms),
                  gamma(B + 2) * mag)
    log_alpha, h_bar = np.float32(np.log(alpha)), np.float32(-D)
    want = -np.mean([float(log_alpha) * (float(li) + float(h_bar)) for li in lp])  # eq. 18 in log α
    # per term 2 roundings (+, ×), the sum (B − 1), ÷ B (1)
    bound = gamma(B + 2) * np.mean(np.abs(log_alpha) * (np.abs(f64(lp)) + abs(h_bar)))
    fn = maybe_jit(C.sac_temperature_loss, use_jit)
    assert_within(fn(log_alpha=log_alpha, log_prob=lp, target_entropy=h_bar), want, bound)
    # −mean(Q1): B − 1 additions and ÷ B
    assert_within(maybe_jit(C.td3_actor_loss, use_jit)(q1), -np.mean(f64(q1)), gamma(B) * np.mean(np.abs(q1)))


def test_actor_and_temperature_losses_vmap_over_seeds():
    batches = [make_batch(s) for s in range(4)]
    q1, q2, lp = (np.stack([b[k] for b in batches]) for k in ("q1_t", "q2_t", "log_prob_t"))
    alpha = np.stack([b["alpha"] for b in batches])
    actor = jax.jit(jax.vmap(lambda a, b_, c, d: C.sac_actor_loss(q1=a, q2=b_, log_prob=c, alpha=d)))(q1, q2, lp, alpha)
    temp = jax.jit(jax.vmap(lambda la, x: C.sac_temperature_loss(log_alpha=la, log_prob=x, target_entropy=-3.0)))(
        np.log(alpha), lp)
    td3 = jax.jit(jax.vmap(C.td3_actor_loss))(q1)
    assert actor.shape == temp.shape == td3.shape == (4,)
    for s in range(4):
        mag = np.mean(np.abs(alpha[s] * f64(lp[s])) + np.abs(np.minimum(q1[s], q2[s])))
        assert_within(actor[s], np.mean(alpha[s] * f64(lp[s]) - np.minimum(f64(q1[s]), f64(q2[s]))),
                      gamma(B + 2) * mag)
        la = f64(np.float32(np.log(alpha[s])))
        assert_within(temp[s], -np.mean(la * (f64(lp[s]) - 3.0)),
                      gamma(B + 2) * np.mean(np.abs(la) * (np.abs(f64(lp[s])) + 3.0)))
        assert_within(td3[s], -np.mean(f64(q1[s])), gamma(B) * np.mean(np.abs(q1[s])))


def test_loss_gradients_wrt_inputs():
    """∂/∂q1 of mean(α lp − min(q1, q2)) is −1/B where q1 < q2, else 0; ∂/∂lp = α/B; α gets none (held fixed). The
    temperature loss moves log α by −mean(lp + H̄) and gives the policy's log-probabilities no gradient. B = 16: 1/B
    and α/B are exact in binary, so these are equalities."""
    b = make_batch(0)
    q1, q2, lp, alpha = b["q1_t"], b["q2_t"], b["log_prob_t"], b["alpha"]
    g1, g2, glp, ga = jax.grad(lambda *x: C.sac_actor_loss(q1=x[0], q2=x[1], log_prob=x[2], alpha=x[3]),
                               argnums=(0, 1, 2, 3))(q1, q2, lp, alpha)
    np.testing.assert_array_equal(g1, np.where(q1 < q2, -1.0 / B, 0.0))
    np.testing.assert_array_equal(g2, np.where(q2 < q1, -1.0 / B, 0.0))
    np.testing.assert_array_equal(glp, np.full(B, np.float32(alpha) / B))
    assert ga == 0.0
    log_alpha = np.float32(np.log(alpha))
    g_la, g_lp = jax.grad(lambda la, x: C.sac_temperature_loss(log_alpha=la, log_prob=x, target_entropy=-3.0),
                          argnums=(0, 1))(log_alpha, lp)
    # d/d log α = −mean(lp − 3): B additions and ÷ B, as the loss itself
    assert_within(g_la, -np.mean(f64(lp) - 3.0), gamma(B + 2) * np.mean(np.abs(f64(lp)) + 3.0))
    np.testing.assert_array_equal(g_lp, np.zeros(B))
    np.testing.assert_array_equal(jax.grad(C.td3_actor_loss)(q1), np.full(B, -1.0 / B))


def test_temperature_loss_catches_planted_unstopped_gradient(monkeypatch):
    """Without the stop_gradient the temperature loss would also train the policy (∂/∂lp = −log α/B ≠ 0)."""
    b = make_batch(0)
    log_alpha = np.float32(np.log(b["alpha"]))

    def g_lp():
        return jax.grad(lambda x: C.sac_temperature_loss(log_alpha=log_alpha, log_prob=x, target_entropy=-3.0))(
            b["log_prob_t"])

    np.testing.assert_array_equal(g_lp(), np.zeros(B))
    monkeypatch.setattr(C.jax.lax, "stop_gradient", lambda x: x)
    assert np.abs(g_lp()).max() > 0


# Two analytic critics Q_i(a) = β_i − Σ_d w_id (a_d − c_id)², so ∂Q_i/∂a = −2 w_i (a − c_i).
CRITICS = dict(w=f32([[1.0, 0.5, 2.0], [0.3, 1.5, 0.7]]), c=f32([[0.2, 1.0, -0.5], [-0.4, 2.0, 1.0]]),
               beta=f32([1.0, -0.5]))


def quadratic_q(a, i):
    return CRITICS["beta"][i] - jnp.sum(CRITICS["w"][i] * jnp.square(a - CRITICS["c"][i]), -1)


def np_quadratic_q(a, i):
    return f64(CRITICS["beta"][i]) - np.sum(f64(CRITICS["w"][i]) * (a - f64(CRITICS["c"][i])) ** 2, -1)


def np_quadratic_dq(a, i):
    return -2.0 * f64(CRITICS["w"][i]) * (a - f64(CRITICS["c"][i]))


def test_actor_loss_gradients_wrt_actions():
    """∇_a of the TD3 loss −mean Q1(a) is (2/B)·w_1·(a − c_1); of the SAC loss (log π held fixed) −(1/B)·∇_a Q_i*(a)
    with i* the smaller critic at a."""
    rng = np.random.default_rng(0)
    a = f32(rng.uniform(LOW, HIGH, size=(B, D)))
    lp = f32(rng.normal(size=B))
    ga = jax.grad(lambda x: C.td3_actor_loss(quadratic_q(x, 0)))(a)
    want = -np_quadratic_dq(f64(a), 0) / B
    # a − c (1 rounding), × w (1), × 2 and × 1/B exact: γ_2 relative, elementwise
    assert_within(ga, want, gamma(2) * np.abs(want))
    q1, q2 = np_quadratic_q(f64(a), 0), np_quadratic_q(f64(a), 1)
    assert np.min(np.abs(q1 - q2)) > 1e-3  # no near-ties: float32 picks the same critic as float64
    gs = jax.grad(lambda x: C.sac_actor_loss(q1=quadratic_q(x, 0), q2=quadratic_q(x, 1), log_prob=lp,
                                             alpha=np.float32(0.2)))(a)
    want_s = -np.where((q1 < q2)[:, None], np_quadratic_dq(f64(a), 0), np_quadratic_dq(f64(a), 1)) / B
    assert_within(gs, want_s, gamma(2) * np.abs(want_s))
    # the finite-difference slope of the float64 loss agrees with the analytic gradient (checks the reference itself)
    e = 1e-6
    for i, d in ((0, 0), (5, 2)):
        step = np.zeros((B, D))
        step[i, d] = e

        def loss64(x):
            return np.mean(0.2 * f64(lp) - np.minimum(np_quadratic_q(x, 0), np_quadratic_q(x, 1)))

        fd = (loss64(f64(a) + step) - loss64(f64(a) - step)) / (2 * e)
        # central difference of a quadratic: exact up to float64 cancellation, ≈ u64·|loss|/e ≈ 1e-9
        assert abs(fd - want_s[i, d]) < 1e-8


# ---------------------------------------------------------------------------
# The tanh-squashed Gaussian (distributions.py) that SAC's log-probabilities come from.
# ---------------------------------------------------------------------------

SPACE = dist.ActionSpace(num_actions=None, low=LOW, high=HIGH, squash="tanh")


def policy_params(seed):
    rng = np.random.default_rng(seed)
    return dist.Gaussian(mean=f32(rng.uniform(-1.0, 1.0, size=(B, D))),
                         log_std=f32(rng.uniform(-1.0, 0.5, size=(B, D))))


def np_tanh_gaussian(params, eps):
    """Haarnoja et al. 2018b, appendix C, in float64: u = μ + σε, a = low + (tanh u + 1)·h,
    log π(a) = Σ_d [log N(u_d; μ_d, σ_d²) − log h_d − log(1 − tanh² u_d)], with log(1 − tanh² u) = −2 log cosh u
    = −2(|u| + log1p(e^{−2|u|}) − log 2)."""
    mu, ls, eps = f64(params.mean), f64(params.log_std), f64(eps)
    sigma = np.exp(ls)
    u = mu + sigma * eps
    h = (f64(HIGH) - f64(LOW)) / 2
    a = f64(LOW) + (np.tanh(u) + 1.0) * h
    log_1m_tanh2 = -2.0 * (np.abs(u) + np.log1p(np.exp(-2.0 * np.abs(u))) - np.log(2.0))
    gauss = -0.5 * eps ** 2 - ls - 0.5 * np.log(2 * np.pi)
    terms = dict(gauss=gauss, log_h=np.broadcast_to(np.log(h), u.shape), log_1m_tanh2=log_1m_tanh2)
    return u, a, np.sum(gauss - np.log(h) - log_1m_tanh2, -1), terms


def tanh_gaussian_bounds(params, eps):
    """|Δ| of float32 (a, log π) against float64, to first order.

    u = μ + σε: exp (FN) × (1) + (1): Δu ≤ γ_{FN+2}(|μ| + σ|ε|). a = low + (tanh u + 1)·h: tanh is 1-Lipschitz, so
    Δa ≤ h·Δu + γ_{FN+4}(|low| + (1 + |t|)·h) (tanh, +1, ×h, +low, h's own rounding).
    log π: z = (u − μ)·e^{−ls} has Δz ≤ Δu/σ + γ_{FN+2}|ε|, so ½z² moves by |ε|·Δz + γ_2·½ε²; the stable log-Jacobian
    2(log 2 − u − softplus(−2u)) has slope −2 tanh u (|·| ≤ 2) in u and its own roundings (softplus ≈ 2 FN, + 4) on
    its terms; log h (FN + 1). The sum over the 3·D terms (3D − 1 additions) adds γ_{3D}·Σ|terms|.
    """
    mu, ls, eps = f64(params.mean), f64(params.log_std), f64(eps)
    sigma = np.exp(ls)
    u, _, _, terms = np_tanh_gaussian(params, eps)
    h = (f64(HIGH) - f64(LOW)) / 2
    du = gamma(FN + 2) * (np.abs(mu) + sigma * np.abs(eps))
    da = h * du + gamma(FN + 4) * (np.abs(f64(LOW)) + (1 + np.abs(np.tanh(u))) * h)
    dz = du / sigma + gamma(FN + 2) * np.abs(eps)
    softplus = np.logaddexp(-2.0 * u, 0.0)
    per_dim = (np.abs(eps) * dz + gamma(2) * 0.5 * eps ** 2 + 2 * du
               + gamma(2 * FN + 4) * 2 * (np.log(2.0) + np.abs(u) + softplus) + gamma(FN + 1) * np.abs(np.log(h)))
    mag = np.abs(terms["gauss"]) + np.abs(terms["log_h"]) + np.abs(terms["log_1m_tanh2"])
    return da, np.sum(per_dim, -1) + gamma(3 * D) * np.sum(mag, -1)


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_tanh_gaussian_log_prob_matches_change_of_variables(seed, use_jit):
    params = policy_params(seed)
    key = jax.random.PRNGKey(seed)
    a, logp = maybe_jit(lambda k, p: dist.sample(k, p, SPACE), use_jit)(key, params)
    eps = jax.random.normal(key, params.mean.shape, params.mean.dtype)  # sample's one draw
    u, want_a, want_logp, _ = np_tanh_gaussian(params, eps)
    da, dlogp = tanh_gaussian_bounds(params, eps)
    assert_within(a, want_a, da, err_msg="action")
    assert_within(logp, want_logp, dlogp, err_msg="log π")
    # the reference's log-Jacobian is the log of the squash's slope: a central difference in float64 (truncation
    # error ≈ e²·|a'''|/6 relative to a' ≈ 1e-12 at e = 1e-6, cancellation ≈ u64·|a|/e ≈ 1e-10; 1e-6 is loose)
    e = 1e-6
    h = (f64(HIGH) - f64(LOW)) / 2
    slope = ((np.tanh(u + e) - np.tanh(u - e)) / (2 * e)) * h
    fd_logp = np.sum(-0.5 * f64(eps) ** 2 - f64(params.log_std) - 0.5 * np.log(2 * np.pi) - np.log(slope), -1)
    np.testing.assert_allclose(fd_logp, want_logp, rtol=0, atol=1e-6)


def test_tanh_gaussian_catches_planted_log_jacobian_sign(monkeypatch):
    params = policy_params(0)
    key = jax.random.PRNGKey(0)
    eps = jax.random.normal(key, params.mean.shape, params.mean.dtype)
    _, _, want_logp, _ = np_tanh_gaussian(params, eps)
    _, bound = tanh_gaussian_bounds(params, eps)
    assert within(dist.sample(key, params, SPACE)[1], want_logp, bound)
    real = dist._log_det_squash
    monkeypatch.setattr(dist, "_log_det_squash", lambda u, space: -real(u, space))
    assert not within(dist.sample(key, params, SPACE)[1], want_logp, bound)
    # and the SAC policy gradient through the sample (below) fails as well
    got = sac_mean_gradient(params, key, alpha=np.float32(0.2))
    want, grad_bound = np_sac_mean_gradient(params, eps, alpha=np.float32(0.2))
    assert not within(got, want, grad_bound)


def sac_mean_gradient(params, key, alpha):
    """∂/∂μ of the SAC actor loss with the reparameterised tanh sample and the analytic critics."""
    def loss(mean):
        a, logp = dist.sample(key, params._replace(mean=mean), SPACE)
        return C.sac_actor_loss(q1=quadratic_q(a, 0), q2=quadratic_q(a, 1), log_prob=logp, alpha=alpha)

    return jax.grad(loss)(params.mean)


def np_sac_mean_gradient(params, eps, alpha):
    """Analytic ∂J/∂μ_{b,d} = (1/B)·[α·2 tanh u − ∂Q_i*/∂a_d · h_d (1 − tanh² u)], and its float32 error bound.

    With ε fixed, u − μ = σε does not move with μ, so log N contributes nothing; −log(1 − tanh² u) has slope 2 tanh u;
    a has slope h(1 − tanh² u). In float32 jax.grad sums three cotangents into ∂/∂u and then subtracts the Gaussian's
    again for ∂/∂μ: (i) the critic's, ≤ |∂Q/∂a|·h·(1 + t²)/B in magnitude (1 − t² cancels), (ii) the Gaussian's
    α|z|/(σB), twice (added, then subtracted), (iii) the log-Jacobian's 2 − 4·sigmoid(−2u), ≤ 6α/B in magnitude. Each
    passes ≤ 2 FN (tanh or exp, and softplus's derivative) + 12 roundings: γ_{2FN+12}·Σ magnitudes. To first order the
    error Δu of u moves (i) and (iii) by at most L·Δu, L = [2w h²(1 − t²)² + 2|∂Q/∂a|·h|t|(1 − t²) + 2α(1 − t²)]/B,
    and a's own rounding (Δa beyond h·Δu) moves ∂Q/∂a by 2w·Δa.
    """
    mu, ls, eps, alpha = f64(params.mean), f64(params.log_std), f64(eps), float(alpha)
    sigma = np.exp(ls)
    u, a, _, _ = np_tanh_gaussian(params, eps)
    t = np.tanh(u)
    h = (f64(HIGH) - f64(LOW)) / 2
    pick = (np_quadratic_q(a, 0) < np_quadratic_q(a, 1))[:, None]
    assert np.min(np.abs(np_quadratic_q(a, 0) - np_quadratic_q(a, 1))) > 1e-3  # no near-ties
    dq = np.where(pick, np_quadratic_dq(a, 0), np_quadratic_dq(a, 1))
    w = np.where(pick, f64(CRITICS["w"][0]), f64(CRITICS["w"][1]))
    grad = (alpha * 2 * t - dq * h * (1 - t ** 2)) / B
    mags = np.abs(dq) * h * (1 + t ** 2) / B + 2 * alpha * np.abs(eps) / (sigma * B) + 6 * alpha / B
    du = gamma(FN + 2) * (np.abs(mu) + sigma * np.abs(eps))
    da_own = gamma(FN + 4) * (np.abs(f64(LOW)) + (1 + np.abs(t)) * h)
    lip = (2 * w * h ** 2 * (1 - t ** 2) ** 2 + 2 * np.abs(dq) * h * np.abs(t) * (1 - t ** 2)
           + 2 * alpha * (1 - t ** 2)) / B
    return grad, gamma(2 * FN + 12) * mags + lip * du + 2 * w * da_own * h / B


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_sac_actor_gradient_through_the_tanh_sample(seed, use_jit):
    """End to end: distributions.sample (tanh) → critics → sac_actor_loss, differentiated w.r.t. the policy mean."""
    params = policy_params(seed)
    key = jax.random.PRNGKey(10 + seed)
    alpha = np.float32(0.2)
    got = maybe_jit(sac_mean_gradient, use_jit)(params, key, alpha)
    eps = jax.random.normal(key, params.mean.shape, params.mean.dtype)
    want, bound = np_sac_mean_gradient(params, eps, alpha)
    assert_within(got, want, bound)

"""Tests for jaxrl_policy.losses.

Each function is checked against (a) a plain numpy/python loop written from the
paper's equations, eagerly, under jax.jit and under jax.vmap; (b) small cases
worked out by hand; (c) rlax where it computes the same quantity.

Tolerances are float32 error bounds (tests/tolerance.py): γ_k times the sum of the
magnitudes of the terms, k the roundings along the longest path, with the numpy
references evaluated in float64 (their own error, ~1e-16 relative, is negligible)
and twice the bound against rlax (float32 too). Hand cases whose every intermediate
is a short dyadic fraction (0.5, 0.25, 2.125) are exact in float32 and compared
exactly.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax
from tolerance import FN, U32, assert_within, gamma, kl_bound, log_softmax64, log_softmax_err, within

from jaxrl_policy.core import losses as L

T = 7


# ---------------------------------------------------------------------------
# Random trajectories.
# ---------------------------------------------------------------------------

def make_traj(seed, truncations=False, length=T):
    """A random trajectory with a termination mid-way and optional truncations.

    v_t is v_tm1 shifted by one with a final bootstrap, except at truncations,
    where v_t[t] is the value of the true final observation and differs from
    v_tm1[t+1] (the reset observation).
    """
    rng = np.random.default_rng(seed)
    terminated = rng.random(length) < 0.25
    terminated[length // 2] = True  # Always at least one mid-trajectory termination.
    discount = 0.9 * (1.0 - terminated)
    v_tm1 = rng.normal(size=length)
    v_t = np.concatenate([v_tm1[1:], rng.normal(size=1)])
    trunc = np.zeros(length, bool)
    if truncations:
        trunc = (rng.random(length) < 0.3) & ~terminated
        trunc[1] = True
        terminated[1] = False
        discount[1] = 0.9
        v_t[trunc] = rng.normal(size=trunc.sum())  # True final-observation values.
    def f32(x):
        return np.asarray(x, np.float32)

    return dict(
        r_t=f32(rng.normal(size=length)),
        discount_t=f32(discount),
        v_tm1=f32(v_tm1),
        v_t=f32(v_t),
        rho_tm1=f32(np.exp(rng.normal(scale=0.8, size=length))),  # ~[0.1, 10].
        lambda_vec=f32(rng.uniform(0.3, 1.0, size=length)),
        truncated_t=trunc,
    )


def lam_for(traj, kind):
    return np.float32(0.8) if kind == "scalar" else traj["lambda_vec"]


def maybe_jit(fn, use_jit):
    return jax.jit(fn) if use_jit else fn


# ---------------------------------------------------------------------------
# Numpy references, written as the papers' sums rather than recursions.
# ---------------------------------------------------------------------------

def np_gae(r_t, discount_t, v_tm1, v_t, lambda_, truncated_t=None):
    """GAE, Schulman et al. 2016 eq. 16: Â_t = Σ_l (Π_{j<l} γ_j λ_j) δ_{t+l}."""
    r_t, discount_t, v_tm1, v_t = (np.asarray(x, np.float64) for x in (r_t, discount_t, v_tm1, v_t))
    n = len(r_t)
    lam = np.broadcast_to(np.asarray(lambda_, np.float64), (n,))
    trunc = np.zeros(n) if truncated_t is None else np.asarray(truncated_t, np.float64)
    delta = [r_t[t] + discount_t[t] * v_t[t] - v_tm1[t] for t in range(n)]
    adv = np.zeros(n)
    for t in range(n):
        weight = 1.0
        for k in range(t, n):
            adv[t] += weight * delta[k]
            weight *= discount_t[k] * lam[k] * (1.0 - trunc[k])
    return adv


def np_vtrace(v_tm1, v_t, r_t, discount_t, rho_tm1, lambda_=1.0, clip_rho=1.0,
              clip_pg_rho=1.0, truncated_t=None, clip_c=1.0):
    """IMPALA eq. 1: v_s = V(x_s) + Σ_{t≥s} (Π_{s≤i<t} γ_i c_i) δ_t V; pg of §4.2."""
    v_tm1, v_t, r_t, discount_t, rho_tm1 = (np.asarray(x, np.float64) for x in (v_tm1, v_t, r_t, discount_t, rho_tm1))
    n = len(r_t)
    lam = np.broadcast_to(np.asarray(lambda_, np.float64), (n,))
    trunc = np.zeros(n) if truncated_t is None else np.asarray(truncated_t, np.float64)
    vs_minus_v = np.zeros(n)
    for s in range(n):
        weight = 1.0
        for t in range(s, n):
            rho = min(clip_rho, rho_tm1[t])
            delta = rho * (r_t[t] + discount_t[t] * v_t[t] - v_tm1[t])
            vs_minus_v[s] += weight * delta
            c = lam[t] * min(clip_c, rho_tm1[t]) * (1.0 - trunc[t])
            weight *= discount_t[t] * c
    vs = np.asarray(v_tm1, np.float64) + vs_minus_v
    pg = np.zeros(n)
    for s in range(n):
        if s + 1 < n and not trunc[s]:
            vs_next = v_t[s] + vs_minus_v[s + 1]
        else:
            vs_next = v_t[s]
        pg[s] = min(clip_pg_rho, rho_tm1[s]) * (r_t[s] + discount_t[s] * vs_next - v_tm1[s])
    return vs, pg


# ---------------------------------------------------------------------------
# Float32 error bounds of the recursions: the references run on magnitudes.
# ---------------------------------------------------------------------------

def gae_bound(r_t, discount_t, v_tm1, v_t, lambda_, truncated_t=None, sides=1):
    """|Â − exact| of one float32 GAE (sides=2: between two). Â_t = Σ_l (Π decay) δ_{t+l}: a term l steps on has
    δ's 3 roundings, then per step the decay d·λ (2, λ's conversion to float32 included; ·(1 − truncated) is
    exact), × and + (2), and the associative scan's extra product (1): k = 5T. Σ|terms| is the reference on |r|,
    |v| (δ's terms |r| + d|v_t| + |v_tm1|)."""
    mag = np_gae(np.abs(r_t), discount_t, -np.abs(v_tm1), np.abs(v_t), lambda_, truncated_t)
    return sides * gamma(5 * len(r_t)) * mag


def vtrace_bound(v_tm1, v_t, r_t, discount_t, rho_tm1, lambda_=1.0, clip_rho=1.0, clip_pg_rho=1.0,
                 truncated_t=None, clip_c=1.0, sides=1, rho_rel=0.0):
    """(vs, pg) bounds of one float32 V-trace (sides=2: between two). δ = ρ̄·(r + d·v_t − v_tm1) rounds 5 times
    (ρ̄'s float32 conversion included), each step of the trace 6 (c = λ·min(c̄, ρ)·(1 − trunc) with λ and c̄
    converted, d·c, × and +, and the associative scan's extra product), vs = v + (vs − v) once, pg's
    ρ̄_pg·(r + d·(v_t + ·) − v) 6 more: k = 6T + 8. A relative error rho_rel in each ρ (a computed ratio) adds
    at most T·rho_rel to each term (ρ enters a term through δ and up to T − 1 traces). Σ|terms|: the reference
    on |r|, |v| (with v_tm1 negated its vs is Σ|terms| − |v|, so + 2|v|)."""
    vs_mag, pg_mag = np_vtrace(-np.abs(v_tm1), np.abs(v_t), np.abs(r_t), discount_t, rho_tm1, lambda_, clip_rho,
                               clip_pg_rho, truncated_t, clip_c)
    rel = sides * (gamma(6 * len(r_t) + 8) + len(r_t) * rho_rel)
    return rel * (vs_mag + 2 * np.abs(v_tm1)), rel * pg_mag


# ---------------------------------------------------------------------------
# GAE.
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("truncations", [False, True])
@pytest.mark.parametrize("lam_kind", ["scalar", "vector"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gae_bootstrapped_matches_reference(seed, lam_kind, truncations, use_jit):
    tr = make_traj(seed, truncations)
    lam = lam_for(tr, lam_kind)
    trunc = tr["truncated_t"] if truncations else None
    got = maybe_jit(L.gae_bootstrapped, use_jit)(
        r_t=tr["r_t"], discount_t=tr["discount_t"], v_tm1=tr["v_tm1"], v_t=tr["v_t"],
        lambda_=lam, truncated_t=trunc)
    want = np_gae(tr["r_t"], tr["discount_t"], tr["v_tm1"], tr["v_t"], lam, trunc)
    assert_within(got, want, gae_bound(tr["r_t"], tr["discount_t"], tr["v_tm1"], tr["v_t"], lam, trunc))


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("lam_kind", ["scalar", "vector"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gae_matches_reference_and_rlax(seed, lam_kind, use_jit):
    tr = make_traj(seed)
    lam = lam_for(tr, lam_kind)
    values = np.concatenate([tr["v_tm1"], tr["v_t"][-1:]])
    got = maybe_jit(L.gae, use_jit)(
        r_t=tr["r_t"], discount_t=tr["discount_t"], values=values, lambda_=lam)
    want = np_gae(tr["r_t"], tr["discount_t"], values[:-1], values[1:], lam)
    bound = gae_bound(tr["r_t"], tr["discount_t"], values[:-1], values[1:], lam)
    assert_within(got, want, bound)
    oracle = rlax.truncated_generalized_advantage_estimation(
        tr["r_t"], tr["discount_t"], lam, values)
    assert_within(got, oracle, 2 * bound)  # rlax: the same recursion in float32


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gae_bound_catches_planted_bugs(seed):
    """The derived bound is tight enough to fail on real bugs: bootstrapping one step too far (V(s_{t+2})), and λ
    applied twice in the trace (decay d·λ²); the real GAE passes it."""
    tr = make_traj(seed)
    lam = np.float32(0.8)
    values = np.concatenate([tr["v_tm1"], tr["v_t"][-1:]])
    want = np_gae(tr["r_t"], tr["discount_t"], values[:-1], values[1:], lam)
    bound = gae_bound(tr["r_t"], tr["discount_t"], values[:-1], values[1:], lam)
    assert within(L.gae(r_t=tr["r_t"], discount_t=tr["discount_t"], values=values, lambda_=lam), want, bound)
    kw = dict(r_t=tr["r_t"], discount_t=tr["discount_t"], v_tm1=values[:-1])
    off_by_one = L.gae_bootstrapped(v_t=np.concatenate([values[2:], values[-1:]]), lambda_=lam, **kw)
    lambda_twice = L.gae_bootstrapped(v_t=values[1:], lambda_=lam * lam, **kw)
    assert not within(off_by_one, want, bound)
    assert not within(lambda_twice, want, bound)


def test_gae_vmap():
    trajs = [make_traj(s, truncations=True) for s in range(4)]
    batch = {k: np.stack([t[k] for t in trajs]) for k in trajs[0]}
    fn = jax.jit(jax.vmap(lambda r, d, v0, v1, lam, tr: L.gae_bootstrapped(
        r_t=r, discount_t=d, v_tm1=v0, v_t=v1, lambda_=lam, truncated_t=tr)))
    got = fn(batch["r_t"], batch["discount_t"], batch["v_tm1"], batch["v_t"],
             batch["lambda_vec"], batch["truncated_t"])
    for b, t in enumerate(trajs):
        want = np_gae(t["r_t"], t["discount_t"], t["v_tm1"], t["v_t"], t["lambda_vec"],
                      t["truncated_t"])
        assert_within(got[b], want, gae_bound(t["r_t"], t["discount_t"], t["v_tm1"], t["v_t"], t["lambda_vec"],
                                              t["truncated_t"]))
    # Also gae() with a scalar λ shared across the batch.
    values = np.concatenate([batch["v_tm1"], batch["v_t"][:, -1:]], axis=1)
    got = jax.vmap(lambda r, d, v: L.gae(r_t=r, discount_t=d, values=v, lambda_=0.7))(
        batch["r_t"], batch["discount_t"], values)
    for b in range(4):
        want = np_gae(batch["r_t"][b], batch["discount_t"][b], values[b, :-1],
                      values[b, 1:], 0.7)
        assert_within(got[b], want, gae_bound(batch["r_t"][b], batch["discount_t"][b], values[b, :-1],
                                              values[b, 1:], 0.7))


def test_gae_hand_t3():
    # γ = λ = 0.5, termination after step 1 (discount_1 = 0).
    # values = [1, 2, 3, 4], r = [1, 1, 3]:
    #   δ0 = 1 + 0.5·2 − 1 = 1
    #   δ1 = 1 + 0·3   − 2 = −1
    #   δ2 = 3 + 0.5·4 − 3 = 2
    #   Â2 = 2
    #   Â1 = −1 + 0·0.5·2 = −1          (trace killed by the termination)
    #   Â0 = 1 + 0.5·0.5·(−1) = 0.75
    got = L.gae(r_t=jnp.array([1.0, 1.0, 3.0]), discount_t=jnp.array([0.5, 0.0, 0.5]),
                values=jnp.array([1.0, 2.0, 3.0, 4.0]), lambda_=0.5)
    np.testing.assert_array_equal(got, [0.75, -1.0, 2.0])  # every intermediate a short dyadic fraction: exact


def test_gae_bootstrapped_truncation_hand():
    # Truncation after step 0: v_t[0] = 4 is V(true final obs), v_tm1[1] = 10
    # is V(reset obs). γ = 0.5, λ = 1, r = 1 everywhere, v_tm1 = [0, 10, 0],
    # v_t = [4, 0, 2]:
    #   δ0 = 1 + 0.5·4 − 0 = 3;  δ1 = 1 + 0.5·0 − 10 = −9;  δ2 = 1 + 0.5·2 − 0 = 2
    #   Â2 = 2;  Â1 = −9 + 0.5·2 = −8;  Â0 = δ0 = 3   (trace cut at truncation)
    # Without the cut Â0 would be 3 + 0.5·(−8) = −1; bootstrapping from the
    # reset obs (v_tm1[1] = 10) would give δ0 = 6.
    kw = dict(r_t=jnp.ones(3), discount_t=jnp.full(3, 0.5),
              v_tm1=jnp.array([0.0, 10.0, 0.0]), v_t=jnp.array([4.0, 0.0, 2.0]),
              lambda_=1.0)
    got = L.gae_bootstrapped(truncated_t=jnp.array([True, False, False]), **kw)
    np.testing.assert_array_equal(got, [3.0, -8.0, 2.0])  # dyadic inputs and intermediates: exact
    # Float truncation flags behave the same as bools.
    got_f = L.gae_bootstrapped(truncated_t=jnp.array([1.0, 0.0, 0.0]), **kw)
    np.testing.assert_array_equal(got_f, [3.0, -8.0, 2.0])
    np.testing.assert_array_equal(L.gae_bootstrapped(**kw), [-1.0, -8.0, 2.0])


# ---------------------------------------------------------------------------
# V-trace.
# ---------------------------------------------------------------------------

VTRACE_THRESHOLDS = [
    dict(clip_rho_threshold=1.0, clip_pg_rho_threshold=1.0, clip_c_threshold=1.0),
    dict(clip_rho_threshold=2.0, clip_pg_rho_threshold=0.7, clip_c_threshold=1.5),
    dict(clip_rho_threshold=0.8, clip_pg_rho_threshold=3.0, clip_c_threshold=0.6),
]


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("truncations", [False, True])
@pytest.mark.parametrize("thresholds", range(len(VTRACE_THRESHOLDS)))
@pytest.mark.parametrize("lam_kind", ["scalar", "vector"])
@pytest.mark.parametrize("seed", [0, 1])
def test_vtrace_matches_reference(seed, lam_kind, thresholds, truncations, use_jit):
    tr = make_traj(seed, truncations)
    lam = lam_for(tr, lam_kind)
    th = VTRACE_THRESHOLDS[thresholds]
    trunc = tr["truncated_t"] if truncations else None
    out = maybe_jit(L.vtrace, use_jit)(
        v_tm1=tr["v_tm1"], v_t=tr["v_t"], r_t=tr["r_t"], discount_t=tr["discount_t"],
        rho_tm1=tr["rho_tm1"], lambda_=lam, truncated_t=trunc, **th)
    assert isinstance(out, L.VTraceOutput)
    vs, pg = out  # Unpacks as a NamedTuple.
    want_vs, want_pg = np_vtrace(
        tr["v_tm1"], tr["v_t"], tr["r_t"], tr["discount_t"], tr["rho_tm1"], lam,
        th["clip_rho_threshold"], th["clip_pg_rho_threshold"], trunc,
        th["clip_c_threshold"])
    vs_bound, pg_bound = vtrace_bound(
        tr["v_tm1"], tr["v_t"], tr["r_t"], tr["discount_t"], tr["rho_tm1"], lam,
        th["clip_rho_threshold"], th["clip_pg_rho_threshold"], trunc, th["clip_c_threshold"])
    assert_within(vs, want_vs, vs_bound)
    assert_within(pg, want_pg, pg_bound)


def test_vtrace_vmap():
    trajs = [make_traj(s, truncations=True) for s in range(4)]
    batch = {k: np.stack([t[k] for t in trajs]) for k in trajs[0]}
    fn = jax.jit(jax.vmap(lambda v0, v1, r, d, rho, lam, tr: L.vtrace(
        v_tm1=v0, v_t=v1, r_t=r, discount_t=d, rho_tm1=rho, lambda_=lam,
        clip_rho_threshold=1.5, clip_pg_rho_threshold=1.2, truncated_t=tr)))
    vs, pg = fn(batch["v_tm1"], batch["v_t"], batch["r_t"], batch["discount_t"],
                batch["rho_tm1"], batch["lambda_vec"], batch["truncated_t"])
    assert vs.shape == pg.shape == (4, T)
    for b, t in enumerate(trajs):
        args = (t["v_tm1"], t["v_t"], t["r_t"], t["discount_t"], t["rho_tm1"], t["lambda_vec"], 1.5, 1.2,
                t["truncated_t"])
        want_vs, want_pg = np_vtrace(*args)
        vs_bound, pg_bound = vtrace_bound(*args)
        assert_within(vs[b], want_vs, vs_bound)
        assert_within(pg[b], want_pg, pg_bound)


@pytest.mark.parametrize("lam", [1.0, 0.9])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vtrace_matches_rlax(seed, lam):
    tr = make_traj(seed)  # No truncation: v_t is v_tm1 shifted plus a bootstrap.
    kw = dict(lambda_=lam, clip_rho_threshold=1.3, clip_pg_rho_threshold=0.9)
    vs, pg = L.vtrace(v_tm1=tr["v_tm1"], v_t=tr["v_t"], r_t=tr["r_t"],
                      discount_t=tr["discount_t"], rho_tm1=tr["rho_tm1"], **kw)
    oracle = rlax.vtrace_td_error_and_advantage(
        tr["v_tm1"], tr["v_t"], tr["r_t"], tr["discount_t"], tr["rho_tm1"], **kw)
    # both float32; rlax's errors = vs − v_tm1, then + v_tm1 here: two more roundings of |vs| + |v_tm1|
    vs_bound, pg_bound = vtrace_bound(tr["v_tm1"], tr["v_t"], tr["r_t"], tr["discount_t"], tr["rho_tm1"], lam,
                                      1.3, 0.9, sides=2)
    assert_within(vs, oracle.errors + tr["v_tm1"], vs_bound + gamma(2) * (np.abs(vs) + np.abs(tr["v_tm1"])))
    if lam == 1.0:
        # rlax bootstraps the pg advantage from λ·vs_{t+1} + (1−λ)·v_{t+1};
        # IMPALA (and we) use vs_{t+1}: the two agree only at λ = 1.
        assert_within(pg, oracle.pg_advantage, pg_bound)


def test_vtrace_hand_two_steps():
    # v_tm1 = [1, 2], v_t = [2, 3], r = [1, 1], γ = 0.5, rho = [2, 0.5], λ = 1,
    # ρ̄ = ρ̄_pg = c̄ = 1:
    #   ρ = [1, 0.5], c = [1, 0.5]
    #   δ0 = 1·(1 + 0.5·2 − 1) = 1
    #   δ1 = 0.5·(1 + 0.5·3 − 2) = 0.25
    #   (vs − v)_1 = 0.25;  (vs − v)_0 = 1 + 0.5·1·0.25 = 1.125
    #   vs = [2.125, 2.25]
    #   pg0 = min(1, 2)·(1 + 0.5·(2 + 0.25) − 1) = 1.125
    #   pg1 = 0.5·(1 + 0.5·3 − 2) = 0.25
    # Without the ρ̄ clip vs0 = 3.125; without the c̄ clip (or without the
    # discount on the trace) vs0 = 2.25; without the pg clip pg0 = 2.25.
    kw = dict(v_tm1=jnp.array([1.0, 2.0]), v_t=jnp.array([2.0, 3.0]),
              r_t=jnp.array([1.0, 1.0]), discount_t=jnp.array([0.5, 0.5]),
              rho_tm1=jnp.array([2.0, 0.5]))
    vs, pg = L.vtrace(**kw)  # dyadic inputs and intermediates: exact in float32
    np.testing.assert_array_equal(vs, [2.125, 2.25])
    np.testing.assert_array_equal(pg, [1.125, 0.25])
    # Raising c̄ to 2: c0 = 2, (vs − v)_0 = 1 + 0.5·2·0.25 = 1.25, vs0 = 2.25;
    # pg is unchanged because (vs − v)_1 does not depend on c0.
    vs_c, pg_c = L.vtrace(clip_c_threshold=2.0, **kw)
    np.testing.assert_array_equal(vs_c, [2.25, 2.25])
    np.testing.assert_array_equal(pg_c, [1.125, 0.25])
    # Raising ρ̄ to 3: ρ0 = 2, δ0 = 2, (vs − v)_0 = 2.125, vs0 = 3.125.
    vs_r, _ = L.vtrace(clip_rho_threshold=3.0, **kw)
    np.testing.assert_array_equal(vs_r, [3.125, 2.25])
    # Raising ρ̄_pg to 3: pg0 = 2·1.125 = 2.25.
    _, pg_p = L.vtrace(clip_pg_rho_threshold=3.0, **kw)
    np.testing.assert_array_equal(pg_p, [2.25, 0.25])


def test_vtrace_truncation_hand():
    # Truncation after step 0: v_t[0] = 4 = V(true final obs), v_tm1[1] = 10 =
    # V(reset obs). γ = 0.5, r = 1, rho = 1, λ = 1:
    #   δ0 = 1 + 0.5·4 − 0 = 3;   δ1 = 1 + 0.5·2 − 10 = −8
    #   (vs − v)_1 = −8;  (vs − v)_0 = 3 (c0 = 0 at the truncation);  vs = [3, 2]
    #   pg0 = 1 + 0.5·v_t[0] − 0 = 3   (no continuation into the next episode;
    #         with it: 1 + 0.5·(4 − 8) = −1; rlax-style vs[1]: 1 + 0.5·2 = 2)
    #   pg1 = 1 + 0.5·2 − 10 = −8
    vs, pg = L.vtrace(
        v_tm1=jnp.array([0.0, 10.0]), v_t=jnp.array([4.0, 2.0]), r_t=jnp.ones(2),
        discount_t=jnp.full(2, 0.5), rho_tm1=jnp.ones(2),
        truncated_t=jnp.array([True, False]))
    np.testing.assert_array_equal(vs, [3.0, 2.0])  # exact, as above
    np.testing.assert_array_equal(pg, [3.0, -8.0])


@pytest.mark.parametrize("truncations", [False, True])
@pytest.mark.parametrize("lam_kind", ["scalar", "vector"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vtrace_on_policy_equals_gae(seed, lam_kind, truncations):
    # With rho = 1 and every threshold ≥ 1 all clips are inactive, c_t = λ_t and
    # V-trace reduces to TD(λ): vs − v = GAE(λ). At λ = 1 the pg advantage is
    # also the GAE(1) advantage.
    tr = make_traj(seed, truncations)
    lam = lam_for(tr, lam_kind)
    trunc = tr["truncated_t"] if truncations else None
    base = dict(v_t=tr["v_t"], r_t=tr["r_t"], discount_t=tr["discount_t"],
                truncated_t=trunc)
    ones = np.ones(T, np.float32)
    vs, _ = L.vtrace(v_tm1=tr["v_tm1"], rho_tm1=ones, lambda_=lam,
                     clip_rho_threshold=1.0, clip_pg_rho_threshold=2.0, **base)
    adv = L.gae_bootstrapped(v_tm1=tr["v_tm1"], lambda_=lam, **base)
    # two float32 computations of the same sums, each within its bound; vs − v_tm1 rounds once more (u·|vs − v|)
    gae_args = (tr["r_t"], tr["discount_t"], tr["v_tm1"], tr["v_t"])
    vs_bound, _ = vtrace_bound(tr["v_tm1"], tr["v_t"], tr["r_t"], tr["discount_t"], ones, lam, 1.0, 2.0, trunc)
    bound = vs_bound + gae_bound(*gae_args, lam, trunc)
    assert_within(vs - tr["v_tm1"], adv, bound + U32 * (np.abs(adv) + bound))
    _, pg1 = L.vtrace(v_tm1=tr["v_tm1"], rho_tm1=ones, lambda_=1.0, **base)
    adv1 = L.gae_bootstrapped(v_tm1=tr["v_tm1"], lambda_=1.0, **base)
    _, pg_bound = vtrace_bound(tr["v_tm1"], tr["v_t"], tr["r_t"], tr["discount_t"], ones, 1.0, 1.0, 1.0, trunc)
    assert_within(pg1, adv1, pg_bound + gae_bound(*gae_args, 1.0, trunc))


def test_vtrace_outputs_carry_no_gradient():
    tr = make_traj(0, truncations=True)

    def total(v_tm1, v_t, r_t, rho_tm1):
        vs, pg = L.vtrace(v_tm1=v_tm1, v_t=v_t, r_t=r_t, discount_t=tr["discount_t"],
                          rho_tm1=rho_tm1, lambda_=0.9, truncated_t=tr["truncated_t"])
        return jnp.sum(vs) + jnp.sum(pg)

    grads = jax.grad(total, argnums=(0, 1, 2, 3))(
        tr["v_tm1"], tr["v_t"], tr["r_t"], tr["rho_tm1"])
    for g in grads:
        np.testing.assert_array_equal(g, np.zeros(T))


# ---------------------------------------------------------------------------
# Policy losses.
# ---------------------------------------------------------------------------

def np_ppo_clip(ratio, adv, eps):
    ratio, adv = np.asarray(ratio, np.float64), np.asarray(adv, np.float64)
    terms = [min(r * a, min(max(r, 1 - eps), 1 + eps) * a) for r, a in zip(ratio, adv, strict=True)]
    return -sum(terms) / len(terms)


def ppo_clip_bound(ratio, adv, eps, sides=1):
    """−mean_t min(r·A, clip(r, 1 − ε, 1 + ε)·A): per term the inputs' and the clip bounds' conversion to float32
    and the product (3), then T − 1 additions and ÷T: k = T + 3, times mean_t of either candidate's |r·A|."""
    r, a = np.asarray(ratio, np.float64), np.asarray(adv, np.float64)
    terms = np.maximum(np.abs(r * a), np.abs(np.clip(r, 1 - eps, 1 + eps) * a))
    return sides * gamma(len(r) + 3) * terms.mean()


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ppo_clip_loss_matches_reference_and_rlax(seed, use_jit):
    rng = np.random.default_rng(seed)
    ratio = np.exp(rng.normal(scale=0.5, size=T)).astype(np.float32)
    adv = rng.normal(size=T).astype(np.float32)
    got = maybe_jit(L.ppo_clip_loss, use_jit)(ratio_t=ratio, adv_t=adv, epsilon=0.2)
    assert_within(got, np_ppo_clip(ratio, adv, 0.2), ppo_clip_bound(ratio, adv, 0.2))
    # rlax also returns the *negated* objective (a loss to minimise).
    assert_within(got, rlax.clipped_surrogate_pg_loss(ratio, adv, 0.2), ppo_clip_bound(ratio, adv, 0.2, sides=2))


def test_ppo_clip_loss_hand_and_vmap():
    # ε = 0.2; ratio = [1.5, 0.5, 1.1], adv = [1, −2, 3]:
    #   t0: min(1.5·1, 1.2·1) = 1.2;  t1: min(0.5·−2, 0.8·−2) = −1.6;
    #   t2: min(1.1·3, 1.1·3) = 3.3;  loss = −(1.2 − 1.6 + 3.3)/3 = −2.9/3
    ratio = jnp.array([1.5, 0.5, 1.1])
    adv = jnp.array([1.0, -2.0, 3.0])
    bound = ppo_clip_bound(ratio, adv, 0.2)
    assert_within(L.ppo_clip_loss(ratio_t=ratio, adv_t=adv, epsilon=0.2), -2.9 / 3, bound)
    # Gradient sign: where the clipped term is the min (t0: ratio > 1 + ε with
    # A > 0; t1: ratio < 1 − ε with A < 0) there is no gradient; the unclipped
    # t2 gets −A/T = −1, i.e. descent raises the ratio of a good action.
    g = jax.grad(lambda r: L.ppo_clip_loss(ratio_t=r, adv_t=adv, epsilon=0.2))(ratio)
    assert_within(g, [0.0, 0.0, -1.0], gamma(2) * np.abs(adv) / 3)  # −A·(1/T): ÷T and × round
    batched = jax.vmap(lambda r, a: L.ppo_clip_loss(ratio_t=r, adv_t=a, epsilon=0.2))(
        jnp.stack([ratio, ratio]), jnp.stack([adv, -adv]))
    assert_within(batched[0], -2.9 / 3, bound)
    assert_within(batched[1], np_ppo_clip(ratio, -adv, 0.2), bound)


def np_entropy(logits):
    logits = np.asarray(logits, np.float64)
    z = logits - logits.max()
    p = np.exp(z) / np.exp(z).sum()
    return -sum(pi * np.log(pi) for pi in p if pi > 0)


def np_kl(pl, ql):
    pl, ql = np.asarray(pl, np.float64), np.asarray(ql, np.float64)
    p = np.exp(pl - pl.max())
    p /= p.sum()
    q = np.exp(ql - ql.max())
    q /= q.sum()
    return sum(pi * np.log(pi / qi) for pi, qi in zip(p, q, strict=True) if pi > 0)


def entropy_bound(logits):
    """|Ĥ − H| of a float32 −Σ_a p_a log p_a from log_softmax, per row: log p is off by E (log_softmax_err),
    p = exp(log p) by a relative E + FN·u, the product and the A − 1 additions round:
    Σ_a p_a·(|log p_a|·(E_a + γ_{FN+A}) + E_a)."""
    logp, e = log_softmax64(logits), log_softmax_err(logits)
    p = np.exp(logp)
    with np.errstate(invalid="ignore"):
        terms = np.where(p > 0, p * (np.abs(logp) * (e + gamma(FN + logp.shape[-1])) + e), 0.0)
    return terms.sum(-1)


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_entropy_and_kl_match_reference(seed, use_jit):
    rng = np.random.default_rng(seed)
    p_logits = rng.normal(scale=2.0, size=(2, 3, 4)).astype(np.float32)  # [..., A]
    q_logits = rng.normal(scale=2.0, size=(2, 3, 4)).astype(np.float32)
    ent = maybe_jit(L.categorical_entropy, use_jit)(p_logits)
    kl = maybe_jit(L.categorical_kl, use_jit)(p_logits, q_logits)
    assert ent.shape == kl.shape == (2, 3)
    for i in np.ndindex(2, 3):
        assert_within(ent[i], np_entropy(p_logits[i]), entropy_bound(p_logits[i]))
        assert_within(kl[i], np_kl(p_logits[i], q_logits[i]), kl_bound(p_logits[i], q_logits[i]))

    def loss_bound(logits):  # −mean_t H_t: the rows' bounds, then T − 1 additions and ÷T of the H_t
        return entropy_bound(logits).mean() + gamma(len(logits)) * np.mean([np_entropy(lg) for lg in logits])

    loss = maybe_jit(L.entropy_loss, use_jit)(p_logits[0])  # [T=3, A=4]
    assert_within(loss, -np.mean([np_entropy(lg) for lg in p_logits[0]]), loss_bound(p_logits[0]))
    batched = jax.vmap(L.entropy_loss)(p_logits)
    assert_within(batched[1], -np.mean([np_entropy(lg) for lg in p_logits[1]]), loss_bound(p_logits[1]))


def test_entropy_and_kl_hand_and_stable():
    # Uniform over 2: H = log 2. p = [1/4, 3/4] (logits [0, log 3]):
    # H = −(¼·log ¼ + ¾·log ¾). KL([½, ½] ‖ [¼, ¾]) = ½·log 2 + ½·log(2/3).
    # (log 3's conversion to float32 moves a logit by u·log 3, H and KL by less: |∂H/∂x|, |∂KL/∂x_q| < 1)
    log3 = [0.0, np.log(3.0)]
    assert_within(L.categorical_entropy(jnp.zeros(2)), np.log(2), entropy_bound(np.zeros(2)))
    assert_within(L.categorical_entropy(jnp.array(log3)), -(0.25 * np.log(0.25) + 0.75 * np.log(0.75)),
                  entropy_bound(log3) + U32 * np.log(3))
    assert_within(L.categorical_kl(jnp.zeros(2), jnp.array(log3)), 0.5 * np.log(2) + 0.5 * np.log(2 / 3),
                  kl_bound(np.zeros(2), log3) + U32 * np.log(3))
    # the same log_softmax of the same logits on both sides: log p − log q is exactly 0
    np.testing.assert_array_equal(L.categorical_kl(jnp.array([0.3, -1.0]), jnp.array([0.3, -1.0])), 0.0)
    # entropy_loss is the NEGATIVE entropy: uniform logits give −log A.
    assert_within(L.entropy_loss(jnp.zeros((3, 4))), -np.log(4), entropy_bound(np.zeros(4)) + gamma(3) * np.log(4))
    # Extreme and -inf logits stay finite, gradients included.
    extreme = jnp.array([[1000.0, 0.0, -1000.0], [0.0, -jnp.inf, 0.0]])
    ent = L.categorical_entropy(extreme)
    assert_within(ent, [0.0, np.log(2)], entropy_bound(extreme))
    kl = L.categorical_kl(extreme, jnp.zeros((2, 3)))
    assert_within(kl, [np.log(3), np.log(3) - np.log(2)], kl_bound(extreme, np.zeros((2, 3))))
    g = jax.grad(lambda x: jnp.sum(L.categorical_entropy(x)))(extreme)
    assert np.all(np.isfinite(g))


# ---------------------------------------------------------------------------
# Value losses.
# ---------------------------------------------------------------------------

def np_ppo_value(v, v_old, target, eps=None):
    v, v_old, target = (np.asarray(x, np.float64) for x in (v, v_old, target))
    out = []
    for vi, oi, ti in zip(v, v_old, target, strict=True):
        loss = (vi - ti) ** 2
        if eps is not None:
            loss = max(loss, (oi + min(max(vi - oi, -eps), eps) - ti) ** 2)
        out.append(loss)
    return 0.5 * sum(out) / len(out)


def ppo_value_bound(v, v_old, target, eps=None):
    """½·mean_t max((v − t)², (v_old + clip(v − v_old, ±ε) − t)²) in float32: (v − t)² is within γ_3 of itself;
    the clipped error e = v_old + c − t is off by γ_4·(|v_old| + |c| + |t| + |v − v_old|) (v − v_old, ε's
    conversion, +, −), so e² by 2|e| times that + u·e²; max takes the larger error; then the T − 1 additions
    and ÷T: + γ_T times the mean."""
    v, v_old, t = (np.asarray(x, np.float64) for x in (v, v_old, target))
    sq = (v - t) ** 2
    err = gamma(3) * sq
    if eps is not None:
        c = np.clip(v - v_old, -eps, eps)
        e = v_old + c - t
        err = np.maximum(err, 2 * np.abs(e) * gamma(4) * (np.abs(v_old) + np.abs(c) + np.abs(t) + np.abs(v - v_old))
                         + gamma(1) * e ** 2)
        sq = np.maximum(sq, e ** 2)
    return 0.5 * (err.mean() + gamma(len(v)) * sq.mean())


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("clip", [None, 0.2])
@pytest.mark.parametrize("seed", [0, 1])
def test_ppo_value_loss_matches_reference(seed, clip, use_jit):
    rng = np.random.default_rng(seed)
    v, v_old, target = rng.normal(size=(3, T)).astype(np.float32)
    got = maybe_jit(L.ppo_value_loss, use_jit)(v_t=v, v_old_t=v_old, target_t=target,
                                               clip_epsilon=clip)
    assert_within(got, np_ppo_value(v, v_old, target, clip), ppo_value_bound(v, v_old, target, clip))


def test_ppo_value_loss_hand_and_vmap():
    # v = [1, 3], v_old = [0, 2], target = [2, 0], ε = 0.2:
    #   t0: (1 − 2)² = 1, clipped v = 0 + 0.2 → (0.2 − 2)² = 3.24 → max 3.24
    #   t1: (3 − 0)² = 9, clipped v = 2 + 0.2 → 2.2² = 4.84    → max 9
    #   clipped loss = 0.5·(3.24 + 9)/2 = 3.06;  unclipped = 0.5·(1 + 9)/2 = 2.5
    kw = dict(v_t=jnp.array([1.0, 3.0]), v_old_t=jnp.array([0.0, 2.0]),
              target_t=jnp.array([2.0, 0.0]))
    clipped_bound = ppo_value_bound(kw["v_t"], kw["v_old_t"], kw["target_t"], 0.2)
    assert_within(L.ppo_value_loss(clip_epsilon=0.2, **kw), 3.06, clipped_bound)
    np.testing.assert_array_equal(L.ppo_value_loss(**kw), 2.5)  # integers, squares, ÷2, ×0.5: exact
    batched = jax.vmap(functools.partial(L.ppo_value_loss, clip_epsilon=0.2))(
        v_t=jnp.stack([kw["v_t"]] * 2), v_old_t=jnp.stack([kw["v_old_t"]] * 2),
        target_t=jnp.stack([kw["target_t"], kw["target_t"] + 1.0]))
    assert_within(batched[0], 3.06, clipped_bound)
    assert_within(batched[1], np_ppo_value(kw["v_t"], kw["v_old_t"], kw["target_t"] + 1.0, 0.2),
                  ppo_value_bound(kw["v_t"], kw["v_old_t"], kw["target_t"] + 1.0, 0.2))


def q_batch(seed, n=5, a=4):
    rng = np.random.default_rng(seed)
    return dict(
        q_tm1=rng.normal(size=(n, a)).astype(np.float32),
        a_tm1=rng.integers(0, a, size=n).astype(np.int32),
        r_t=rng.normal(size=n).astype(np.float32),
        discount_t=(0.9 * (rng.random(n) < 0.7)).astype(np.float32),  # Some terminals.
        q_t=rng.normal(size=(n, a)).astype(np.float32),
        q_sel=rng.normal(size=(n, a)).astype(np.float32),
    )


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_q_learning_matches_reference_and_rlax(seed, use_jit):
    b = q_batch(seed)
    fn = maybe_jit(L.q_learning, use_jit)
    batched = jax.vmap(lambda q0, a, r, d, q1: L.q_learning(
        q_tm1=q0, a_tm1=a, r_t=r, discount_t=d, q_t=q1))(
            b["q_tm1"], b["a_tm1"], b["r_t"], b["discount_t"], b["q_t"])
    for i in range(len(b["r_t"])):
        want = b["r_t"][i] + b["discount_t"][i] * max(b["q_t"][i]) - b["q_tm1"][i][b["a_tm1"][i]]
        # r + d·max q − q[a]: 3 roundings on each side (the reference is float32 numpy scalars, as rlax)
        bound = 2 * gamma(3) * (abs(b["r_t"][i]) + b["discount_t"][i] * abs(max(b["q_t"][i]))
                                + abs(b["q_tm1"][i][b["a_tm1"][i]]))
        got = fn(q_tm1=b["q_tm1"][i], a_tm1=b["a_tm1"][i], r_t=b["r_t"][i],
                 discount_t=b["discount_t"][i], q_t=b["q_t"][i])
        assert_within(got, want, bound)
        assert_within(batched[i], want, bound)
        oracle = rlax.q_learning(b["q_tm1"][i], b["a_tm1"][i], b["r_t"][i],
                                 b["discount_t"][i], b["q_t"][i])
        assert_within(got, oracle, bound)


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_double_q_learning_matches_reference_and_rlax(seed, use_jit):
    b = q_batch(seed)
    fn = maybe_jit(L.double_q_learning, use_jit)
    batched = jax.vmap(lambda q0, a, r, d, qv, qs: L.double_q_learning(
        q_tm1=q0, a_tm1=a, r_t=r, discount_t=d, q_t_value=qv, q_t_selector=qs))(
            b["q_tm1"], b["a_tm1"], b["r_t"], b["discount_t"], b["q_t"], b["q_sel"])
    for i in range(len(b["r_t"])):
        a_star = int(np.argmax(b["q_sel"][i]))
        want = (b["r_t"][i] + b["discount_t"][i] * b["q_t"][i][a_star]
                - b["q_tm1"][i][b["a_tm1"][i]])
        bound = 2 * gamma(3) * (abs(b["r_t"][i]) + b["discount_t"][i] * abs(b["q_t"][i][a_star])
                                + abs(b["q_tm1"][i][b["a_tm1"][i]]))  # as in Q-learning
        got = fn(q_tm1=b["q_tm1"][i], a_tm1=b["a_tm1"][i], r_t=b["r_t"][i],
                 discount_t=b["discount_t"][i], q_t_value=b["q_t"][i],
                 q_t_selector=b["q_sel"][i])
        assert_within(got, want, bound)
        assert_within(batched[i], want, bound)
        oracle = rlax.double_q_learning(b["q_tm1"][i], b["a_tm1"][i], b["r_t"][i],
                                        b["discount_t"][i], b["q_t"][i], b["q_sel"][i])
        assert_within(got, oracle, bound)


def test_q_learning_hand_and_double_q_selector():
    # q_tm1 = [1, 2], a = 1, r = 1, γ = 0.5.
    # Value net q_t = [10, 0]; selector prefers action 1: [0, 5].
    #   Q-learning:        1 + 0.5·max(10, 0) − 2 = 4
    #   double Q-learning: 1 + 0.5·q_t_value[argmax selector = 1] − 2 = 1 + 0 − 2 = −1
    #   (using the value net's own argmax would also give 4)
    kw = dict(q_tm1=jnp.array([1.0, 2.0]), a_tm1=jnp.array(1), r_t=jnp.array(1.0),
              discount_t=jnp.array(0.5))
    # small integers and halves: exact in float32
    np.testing.assert_array_equal(L.q_learning(q_t=jnp.array([10.0, 0.0]), **kw), 4.0)
    np.testing.assert_array_equal(
        L.double_q_learning(q_t_value=jnp.array([10.0, 0.0]),
                            q_t_selector=jnp.array([0.0, 5.0]), **kw), -1.0)


def test_td_errors_stop_gradient_on_targets():
    q_tm1 = jnp.array([1.0, 2.0, 3.0])
    q_t = jnp.array([0.5, -1.0, 4.0])
    q_sel = jnp.array([3.0, 0.0, 1.0])
    a, r, d = jnp.array(2), jnp.array(1.0), jnp.array(0.9)

    def ql(q0, q1):
        return L.q_learning(q_tm1=q0, a_tm1=a, r_t=r, discount_t=d, q_t=q1)

    def dql(q0, qv, qs):
        return L.double_q_learning(q_tm1=q0, a_tm1=a, r_t=r, discount_t=d,
                                   q_t_value=qv, q_t_selector=qs)

    g0, g1 = jax.grad(ql, argnums=(0, 1))(q_tm1, q_t)
    np.testing.assert_array_equal(g1, np.zeros(3))
    np.testing.assert_array_equal(g0, [0.0, 0.0, -1.0])  # Only q_tm1[a] moves.
    g0, gv, gs = jax.grad(dql, argnums=(0, 1, 2))(q_tm1, q_t, q_sel)
    np.testing.assert_array_equal(gv, np.zeros(3))
    np.testing.assert_array_equal(gs, np.zeros(3))
    np.testing.assert_array_equal(g0, [0.0, 0.0, -1.0])


@pytest.mark.parametrize("delta", [0.5, 1.0, 2.0])
def test_huber_and_squared_loss(delta):
    x = np.linspace(-4.0, 4.0, 17).astype(np.float32).reshape(17, 1)
    want = [0.5 * v * v if abs(v) <= delta else delta * (abs(v) - 0.5 * delta)
            for v in x.ravel()]
    got = L.huber_loss(x, delta=delta)
    assert got.shape == x.shape
    # x and δ are multiples of ½ below 4: every intermediate (|x|, min, −, ², ×) is exact in float32
    np.testing.assert_array_equal(got.ravel(), want)
    np.testing.assert_array_equal(jax.jit(L.huber_loss)(x, delta), got)
    np.testing.assert_array_equal(got, rlax.huber_loss(x, delta))
    np.testing.assert_array_equal(L.squared_loss(x), 0.5 * x * x)
    np.testing.assert_array_equal(jax.vmap(L.squared_loss)(x), 0.5 * x * x)
    # Hand values at δ = 1: huber(0.5) = 0.125, huber(3) = 1·(3 − 0.5) = 2.5.
    np.testing.assert_array_equal(L.huber_loss(jnp.array([0.5, -3.0])), [0.125, 2.5])


@pytest.mark.parametrize("T", [1, 2, 7, 128])
def test_parallel_reverse_recursion_equals_sequential(T):
    """The accelerator path (associative scan) of acc_t = x_t + d_t·acc_{t+1} equals the scan."""
    from jaxrl_policy.core.losses.returns import _reverse_discounted_sum
    k1, k2 = jax.random.split(jax.random.PRNGKey(T))
    x = jax.random.normal(k1, (T,))
    d = jax.random.uniform(k2, (T,), minval=0.0, maxval=1.0).at[T // 2].set(0.0)  # a cut mid-way
    seq = _reverse_discounted_sum(x, d, parallel=False)
    par = jax.jit(lambda x, d: _reverse_discounted_sum(x, d, parallel=True))(x, d)
    ref, mag = np.zeros(T), np.zeros(T)
    acc = acc_mag = 0.0
    for t in reversed(range(T)):
        acc = float(x[t]) + float(d[t]) * acc
        acc_mag = abs(float(x[t])) + float(d[t]) * acc_mag  # Σ|terms| of acc_t (d ≥ 0)
        ref[t], mag[t] = acc, acc_mag
    # a term l steps on: the scan rounds × and + per step (2T); the associative scan also its products of
    # decays (3T). Two float32 sides vs one against the float64 loop
    assert_within(par, seq, (gamma(3 * T) + gamma(2 * T)) * mag)
    assert_within(seq, ref, gamma(2 * T) * mag)


def test_vtrace_and_gae_accelerator_path_match_cpu_path(monkeypatch):
    """With the backend reported as a GPU, vtrace and gae take the associative-scan path: same values."""
    T = 33
    ks = jax.random.split(jax.random.PRNGKey(7), 5)
    v_tm1, v_t, r_t = (jax.random.normal(k, (T,)) for k in ks[:3])
    discount_t = 0.99 * (jax.random.uniform(ks[3], (T,)) > 0.1)
    rho = jnp.exp(0.5 * jax.random.normal(ks[4], (T,)))
    kw = dict(v_tm1=v_tm1, v_t=v_t, r_t=r_t, discount_t=discount_t, rho_tm1=rho, lambda_=0.9,
              clip_rho_threshold=1.0, clip_pg_rho_threshold=1.0)
    cpu = L.vtrace(**kw)
    cpu_gae = L.gae(r_t=r_t, discount_t=discount_t, values=jnp.concatenate([v_tm1, v_t[-1:]]), lambda_=0.9)
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    acc = L.vtrace(**kw)
    acc_gae = L.gae(r_t=r_t, discount_t=discount_t, values=jnp.concatenate([v_tm1, v_t[-1:]]), lambda_=0.9)
    vs_bound, pg_bound = vtrace_bound(v_tm1, v_t, r_t, discount_t, rho, 0.9, sides=2)
    gae_b = gae_bound(r_t, discount_t, v_tm1, v_t, 0.9, sides=2)
    for a, b, bound in ((acc.vs, cpu.vs, vs_bound), (acc.pg_advantages, cpu.pg_advantages, pg_bound),
                        (acc_gae, cpu_gae, gae_b)):
        assert_within(a, b, bound)


# ---------------------------------------------------------------------------
# Policy gradient and the V-trace actor-critic loss.
# ---------------------------------------------------------------------------

def np_log_softmax(logits):
    z = logits - logits.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def ac_traj(seed, A=3, truncations=True):
    """A trajectory plus learner logits and a behaviour policy that differs from it (ρ ≠ 1)."""
    tr = make_traj(seed, truncations)
    rng = np.random.default_rng(100 + seed)
    logits = rng.normal(size=(T, A)).astype(np.float32)
    mu_logits = (logits + rng.normal(scale=0.7, size=(T, A))).astype(np.float32)
    a = rng.integers(0, A, size=T).astype(np.int32)
    log_mu = np_log_softmax(mu_logits.astype(np.float64))[np.arange(T), a].astype(np.float32)
    return tr, logits, a, log_mu


def np_vtrace_ac(logits, a, log_mu, v_tm1, v_t, r_t, discount_t, lam, clip_rho, clip_pg_rho, trunc, clip_c):
    """IMPALA §4.2 written out: the three loss values and their gradients w.r.t. logits and V(x_t)."""
    logp_all = np_log_softmax(logits.astype(np.float64))
    logp = logp_all[np.arange(len(a)), a]
    rho = np.exp(logp - log_mu)
    vs, pg = np_vtrace(v_tm1, v_t, r_t, discount_t, rho, lam, clip_rho, clip_pg_rho, trunc, clip_c)
    n = len(a)
    p = np.exp(logp_all)
    onehot = np.eye(logits.shape[1])[a]
    policy = -np.mean(pg * logp)
    value = 0.5 * np.mean((vs - v_tm1) ** 2)
    entropy = np.mean(np.sum(p * logp_all, -1))  # −mean H
    d_logits_policy = -(pg[:, None] * (onehot - p)) / n  # the advantage and ρ carry no gradient
    d_v = -(vs - v_tm1) / n  # the targets carry no gradient
    return (policy, value, entropy), d_logits_policy, d_v


def vtrace_ac_bounds(logits, a, log_mu, v_tm1, v_t, r_t, discount_t, lam, clip_rho, clip_pg_rho, trunc, clip_c):
    """Bounds for the float32 (policy, value, entropy) losses and gradients against np_vtrace_ac, same arguments.

    log π(a) is off by E (log_softmax_err); ρ = exp(log π − log μ) by a relative η = E + u|log π − log μ| + FN·u,
    which vtrace_bound carries. policy = −mean pg·log π: mean(Δpg·|log π| + |pg|·E) + γ_{T+1}·mean|pg·log π|.
    value = ½·mean x², x = vs − v off by Δvs + u|x|: ½·(mean(2|x|·Δx + Δx² + u·x²) + γ_T·mean x²). entropy: the
    rows' entropy_bound, + γ_T of the mean. d logits = c·(onehot − p), c = −pg/T off by Δpg/T + γ_2|c|, p by a
    relative E + FN·u, × and − round: (Δpg + γ_3|pg|)/T·(onehot + p) + |pg|/T·p·(E + γ_{FN+1}).
    d v = −x/T (÷T, ×2x): (Δx + γ_3|x|)/T.
    """
    n = len(a)
    logp_all, e_all = log_softmax64(logits), log_softmax_err(logits)
    logp, e = logp_all[np.arange(n), a], e_all[np.arange(n), a]
    rho = np.exp(logp - log_mu)
    eta = e + U32 * np.abs(logp - log_mu) + FN * U32
    args = (v_tm1, v_t, r_t, discount_t, rho, lam, clip_rho, clip_pg_rho, trunc, clip_c)
    vs, pg = np_vtrace(*args)
    d_vs, d_pg = vtrace_bound(*args, rho_rel=eta.max())
    x = vs - np.asarray(v_tm1, np.float64)
    d_x = d_vs + U32 * np.abs(x)
    p = np.exp(logp_all)
    onehot = np.eye(logits.shape[1])[a]
    policy = np.mean(d_pg * np.abs(logp) + np.abs(pg) * e) + gamma(n + 1) * np.mean(np.abs(pg * logp))
    value = 0.5 * (np.mean(2 * np.abs(x) * d_x + d_x ** 2 + U32 * x ** 2) + gamma(n) * np.mean(x ** 2))
    entropy = entropy_bound(logits).mean() + gamma(n) * np.mean(-np.sum(p * logp_all, -1))
    d_logits = ((d_pg + gamma(3) * np.abs(pg))[:, None] * (onehot + p)
                + np.abs(pg)[:, None] * p * (e_all + gamma(FN + 1))) / n
    return (policy, value, entropy), d_logits, (d_x + gamma(3) * np.abs(x)) / n


VT_AC = [dict(lam=1.0, clip_rho=1.0, clip_pg_rho=1.0, clip_c=1.0),
         dict(lam=0.9, clip_rho=0.8, clip_pg_rho=1.5, clip_c=0.7)]


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("hp", range(len(VT_AC)))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vtrace_actor_critic_loss_matches_reference(seed, hp, use_jit):
    tr, logits, a, log_mu = ac_traj(seed)
    h = VT_AC[hp]

    def loss(logits, v_tm1, kind):
        out = L.vtrace_actor_critic_loss(
            logits_t=logits, a_t=a, behaviour_log_prob_t=log_mu, v_tm1=v_tm1, v_t=tr["v_t"], r_t=tr["r_t"],
            discount_t=tr["discount_t"], lambda_=h["lam"], clip_rho_threshold=h["clip_rho"],
            clip_pg_rho_threshold=h["clip_pg_rho"], truncated_t=tr["truncated_t"], clip_c_threshold=h["clip_c"])
        return getattr(out, kind)

    ref_args = (logits, a, log_mu, tr["v_tm1"], tr["v_t"], tr["r_t"], tr["discount_t"], h["lam"], h["clip_rho"],
                h["clip_pg_rho"], tr["truncated_t"], h["clip_c"])
    want, d_logits, d_v = np_vtrace_ac(*ref_args)
    bounds, b_logits, b_v = vtrace_ac_bounds(*ref_args)
    for kind, w, b in zip(("policy", "value", "entropy"), want, bounds, strict=True):
        f = functools.partial(loss, kind=kind)
        assert_within(maybe_jit(f, use_jit)(logits, tr["v_tm1"]), w, b, err_msg=kind)
    g_logits = maybe_jit(jax.grad(functools.partial(loss, kind="policy")), use_jit)(logits, tr["v_tm1"])
    assert_within(g_logits, d_logits, b_logits)
    g_v = maybe_jit(jax.grad(functools.partial(loss, kind="value"), argnums=1), use_jit)(logits, tr["v_tm1"])
    assert_within(g_v, d_v, b_v)
    assert float(jnp.abs(jax.grad(loss, argnums=1)(logits, tr["v_tm1"], "policy")).max()) == 0.0  # no V in the pg


def test_vtrace_actor_critic_loss_catches_planted_bugs(monkeypatch):
    """The reference test above fails if the pg advantage is not multiplied by the clipped ρ, if ρ is
    not clipped at ρ̄_pg, or if ρ carries a gradient. Planting each bug in the loss shows it."""
    from jaxrl_policy.core.losses import actor_critic as ac
    tr, logits, a, log_mu = ac_traj(0)
    h = VT_AC[1]
    args = dict(logits_t=logits, a_t=a, behaviour_log_prob_t=log_mu, v_tm1=tr["v_tm1"], v_t=tr["v_t"],
                r_t=tr["r_t"], discount_t=tr["discount_t"], lambda_=h["lam"], clip_rho_threshold=h["clip_rho"],
                clip_pg_rho_threshold=h["clip_pg_rho"], truncated_t=tr["truncated_t"], clip_c_threshold=h["clip_c"])
    ref_args = (logits, a, log_mu, tr["v_tm1"], tr["v_t"], tr["r_t"], tr["discount_t"], h["lam"], h["clip_rho"],
                h["clip_pg_rho"], tr["truncated_t"], h["clip_c"])
    (policy, _, _), d_logits, _ = np_vtrace_ac(*ref_args)
    (bound, _, _), b_logits, _ = vtrace_ac_bounds(*ref_args)  # the derived bounds of the test above
    assert_within(L.vtrace_actor_critic_loss(**args).policy, policy, bound)
    real_vtrace = ac.vtrace

    def unweighted_pg(**kw):  # pg advantage without the ρ̄_pg-clipped ratio
        out = real_vtrace(**kw)
        rho_pg = jnp.minimum(kw["clip_pg_rho_threshold"], kw["rho_tm1"])
        return out._replace(pg_advantages=out.pg_advantages / rho_pg)

    def unclipped_pg(**kw):
        return real_vtrace(**{**kw, "clip_pg_rho_threshold": 1e9})

    for bug in (unweighted_pg, unclipped_pg):
        monkeypatch.setattr(ac, "vtrace", bug)
        assert not within(L.vtrace_actor_critic_loss(**args).policy, policy, bound), bug.__name__
    monkeypatch.setattr(ac, "vtrace", real_vtrace)
    monkeypatch.setattr(ac.lax, "stop_gradient", lambda x: x)  # ρ (and the targets) would carry gradients
    g = jax.grad(lambda lg: L.vtrace_actor_critic_loss(**{**args, "logits_t": lg}).policy)(logits)
    assert not within(g, d_logits, b_logits)


@pytest.mark.parametrize("seed", [0, 1])
def test_policy_gradient_loss_matches_rlax(seed):
    _, logits, a, _ = ac_traj(seed)
    adv = np.random.default_rng(seed).normal(size=T).astype(np.float32)
    w = np.random.default_rng(seed + 1).uniform(size=T).astype(np.float32)
    # −mean w·A·log π(a): log π(a) off by E (log_softmax_err), 2 products, T − 1 additions and ÷T
    logp, e = np_log_softmax(logits.astype(np.float64))[np.arange(T), a], log_softmax_err(logits)[np.arange(T), a]
    bound = np.mean(np.abs(w * adv) * e) + gamma(T + 2) * np.mean(np.abs(w * adv * logp))
    assert_within(L.policy_gradient_loss(logits, a, adv, w), rlax.policy_gradient_loss(logits, a, adv, w), 2 * bound)
    bound = np.mean(np.abs(adv) * e) + gamma(T + 2) * np.mean(np.abs(adv * logp))
    assert_within(L.policy_gradient_loss(logits, a, adv), -np.mean(adv * logp), bound)
    # the advantage carries no gradient
    assert float(jnp.abs(jax.grad(lambda x: L.policy_gradient_loss(logits, a, x))(adv)).max()) == 0.0
    # the reference here is numpy's float32 log-softmax (its exp and log also within FN·u): 2E
    assert_within(L.categorical_log_prob(logits, a), np_log_softmax(logits)[np.arange(T), a], 2 * e)


@pytest.mark.parametrize("hp", range(len(VT_AC)))
def test_algorithms_vtrace_actor_critic_is_the_tested_loss_on_a_minibatch(hp):
    """V-trace and distillation share ``algorithms.actor_critic.vtrace_actor_critic``: on MB trajectories
    ``[T, MB]`` with a categorical policy and no standardisation it is the mean over trajectories of the reference
    above (IMPALA §4.2), term by term; with standardisation the policy term moves."""
    from jaxrl_policy.algorithms.actor_critic import vtrace_actor_critic
    from jaxrl_policy.core.types import Transition
    h = VT_AC[hp]
    trajs = [ac_traj(seed) for seed in range(3)]
    col = lambda f: np.stack([f(*t) for t in trajs], 1)  # noqa: E731  [T, MB]
    logits = col(lambda tr, lg, a, lm: lg)  # [T, MB, A]
    a, log_mu = col(lambda tr, lg, a, lm: a), col(lambda tr, lg, a, lm: lm)
    v_tm1, v_t = col(lambda tr, *_: tr["v_tm1"]).astype(np.float32), col(lambda tr, *_: tr["v_t"]).astype(np.float32)
    r_t = col(lambda tr, *_: tr["r_t"]).astype(np.float32)
    terminated = col(lambda tr, *_: tr["discount_t"] == 0)
    truncated = col(lambda tr, *_: tr["truncated_t"])
    u = Transition(obs=None, action=a, reward=r_t, terminated=terminated, truncated=truncated, next_obs=None,
                   extras={})
    logp = L.categorical_log_prob(logits, a)
    rho = jnp.exp(logp - log_mu)
    hps = {"gamma": np.float32(0.9), "gae_lambda": np.float32(h["lam"]), "reward_scale": np.float32(1.0)}
    kw = dict(clip_rho_threshold=h["clip_rho"], clip_pg_rho_threshold=h["clip_pg_rho"], clip_c_threshold=h["clip_c"])
    got = vtrace_actor_critic(u, logp, L.categorical_entropy(logits), v_tm1, v_t, rho, hps, **kw)
    want, bound = [], []
    for j in range(3):
        disc = (np.float32(0.9) * (1 - terminated[:, j])).astype(np.float64)
        args = (logits[:, j], a[:, j], log_mu[:, j], v_tm1[:, j], v_t[:, j], r_t[:, j], disc, h["lam"],
                h["clip_rho"], h["clip_pg_rho"], truncated[:, j], h["clip_c"])
        want.append(np_vtrace_ac(*args)[0])
        bound.append(vtrace_ac_bounds(*args)[0])
    want, bound = np.mean(want, 0), np.mean(bound, 0) + gamma(3) * np.mean(np.abs(want), 0)  # + the mean over MB
    for k, kind in enumerate(("policy", "value", "entropy")):
        assert_within(getattr(got, kind), want[k], bound[k], err_msg=kind)
    std = vtrace_actor_critic(u, logp, L.categorical_entropy(logits), v_tm1, v_t, rho, hps, normalize_advantages=1.0,
                              **kw)
    assert not within(std.policy, want[0], bound[0]) and float(std.value) == float(got.value)

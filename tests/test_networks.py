"""Networks: shapes, heads, flattening, and the CPU code paths against flax's own Dense and Conv."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tolerance import FN, assert_within, gamma, within

from jaxrl_policy import default_config
from jaxrl_policy.core.envs import env_spec
from jaxrl_policy.core.networks import (
    ActorCritic,
    CNNTorso,
    MLPTorso,
    QNetwork,
    conv_impl,
    cpu_dot_general,
    make_actor_critic,
    make_q_network,
    patch_conv_general_dilated,
)


@pytest.mark.parametrize("batch_shape", [(7,), (3, 5)])
def test_cpu_dot_general_matches_dense_values_and_gradients(batch_shape):
    x = jax.random.normal(jax.random.PRNGKey(0), (*batch_shape, 6))
    plain, ours = nn.Dense(4), nn.Dense(4, dot_general=cpu_dot_general)
    params = plain.init(jax.random.PRNGKey(1), x)

    def loss(module, p, x):
        return jnp.sum(jnp.sin(module.apply(p, x)))

    # the forward is the same dot_general (same operands, dimension numbers) on both: bit-identical by construction
    np.testing.assert_array_equal(ours.apply(params, x), plain.apply(params, x))
    g_plain = jax.grad(loss, argnums=(1, 2))(plain, params, x)
    g_ours = jax.grad(loss, argnums=(1, 2))(ours, params, x)
    jax.tree.map(assert_within, g_ours, g_plain, _dense_grad_bounds(params, x))
    # under vmap (seeds) as well
    vg = jax.vmap(lambda xx: jax.grad(loss, argnums=1)(ours, params, xx))(jnp.stack([x, 2 * x]))
    want = jax.grad(loss, argnums=1)(plain, params, 2 * x)["params"]["kernel"]
    assert_within(vg["params"]["kernel"][1], want, _dense_grad_bounds(params, 2 * x)[0]["params"]["kernel"])


def _dense_grad_bounds(params, x):
    """|Δ| between two float32 implementations of the gradients of Σ sin(x·W + b) (N rows, K inputs).

    y = x·W + b sums K + 1 terms: Δy ≤ 2γ_{K+1}(|x||W| + |b|); the cotangent cos y then moves by Δy (cos is
    1-Lipschitz) + 2·FN·u (each side's cos), charged as Δct ≤ Δy + γ_16. g_W = xᵀct sums N products:
    Δg_W ≤ 2γ_N·|x|ᵀ|ct| + |x|ᵀΔct; g_b = Σ_n ct likewise with x = 1; g_x = ct·Wᵀ sums F products.
    """
    w, b = np.asarray(params["params"]["kernel"], np.float64), np.asarray(params["params"]["bias"], np.float64)
    shape, x = np.shape(x), np.asarray(x, np.float64).reshape(-1, w.shape[0])
    n, (k, f) = x.shape[0], w.shape
    dy = 2 * gamma(k + 1) * (np.abs(x) @ np.abs(w) + np.abs(b))
    ct = np.abs(np.cos(x @ w + b))
    dct = dy + gamma(16)
    g_w = 2 * gamma(n) * np.abs(x).T @ ct + np.abs(x).T @ dct
    g_b = 2 * gamma(n) * ct.sum(0) + dct.sum(0)
    g_x = 2 * gamma(f) * ct @ np.abs(w).T + dct @ np.abs(w).T
    return {"params": {"bias": g_b, "kernel": g_w}}, g_x.reshape(shape)


def test_heads_and_shapes():
    obs = jnp.zeros((5, 4))
    ac = ActorCritic(3)
    p = ac.init(jax.random.PRNGKey(0), obs)
    logits, v, _ = ac.apply(p, obs)
    assert logits.shape == (5, 3) and v.shape == (5,)
    np.testing.assert_array_equal(ac.apply(p, obs, method=ActorCritic.value), v)
    q = QNetwork(2)
    assert q.apply(q.init(jax.random.PRNGKey(0), obs), obs).shape == (5, 2)
    img = jnp.zeros((2, 10, 10, 4))
    cnn = CNNTorso((32,))
    assert cnn.apply(cnn.init(jax.random.PRNGKey(0), img), img).shape == (2, 32)


def test_share_torso_has_fewer_params():
    obs = jnp.zeros((1, 4))
    count = lambda m: sum(x.size for x in jax.tree.leaves(m.init(jax.random.PRNGKey(0), obs)))  # noqa: E731
    assert count(ActorCritic(2, share_torso=True)) < count(ActorCritic(2))


# ---- MLP torso: observations of any rank are flattened per sample ----------------------------
@pytest.mark.parametrize("obs_shape", [(), (4,), (10, 5), (10, 10, 4)])
def test_mlp_torso_flattens_each_observation(obs_shape):
    """``[B, O...]`` and ``[T, M, O...]`` give the same per-sample features as a flat ``[N, prod(O)]`` input."""
    mlp = MLPTorso((8, 8), obs_ndim=len(obs_shape))
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 5, *obs_shape))  # [T, M, O...]
    p = mlp.init(jax.random.PRNGKey(1), x[0])
    y_tm = mlp.apply(p, x)
    y_b = mlp.apply(p, x.reshape(15, *obs_shape))
    assert y_tm.shape == (3, 5, 8) and y_b.shape == (15, 8)
    flat = MLPTorso((8, 8), obs_ndim=1).apply(p, x.reshape(15, -1))  # same parameters, pre-flattened input
    # pure reshapes, so bit-identical by construction: the same [15, P]·[P, 8] dots (XLA folds the leading
    # [T, M] dims of a dot's operand into one, a bitcast, before the GEMM)
    np.testing.assert_array_equal(y_b, flat)
    np.testing.assert_array_equal(y_tm.reshape(15, 8), y_b)
    kernel = p["params"]["Dense_0"]["kernel"]
    assert kernel.shape == (int(np.prod(obs_shape)), 8)


@pytest.mark.parametrize("torso", ["mlp", "cnn", "auto"])
def test_image_observations_give_one_action_per_sample(torso):
    """The crash of the issue: ``--torso mlp`` on MinAtar gave actions ``[E, 10, 10]``."""
    spec = env_spec("Breakout-MinAtar")
    obs = jnp.zeros((2, 6, *spec.obs_shape))  # [T, M, O...] as V-trace applies it
    ac = make_actor_critic(default_config("ppo", spec.env_id, torso=torso, hidden_sizes=(16,)), spec)
    p = ac.init(jax.random.PRNGKey(0), obs[0])
    logits, v, _ = ac.apply(p, obs)
    assert logits.shape == (2, 6, 3) and v.shape == (2, 6)
    q = make_q_network(default_config("dqn", spec.env_id, torso=torso, hidden_sizes=(16,)), spec)
    assert q.apply(q.init(jax.random.PRNGKey(0), obs[0]), obs).shape == (2, 6, 3)
    conv = [k for k in p["params"]["actor_torso"] if k.startswith("Conv")]
    assert bool(conv) == (torso != "mlp")


# ---- CNN torso: patches + matmul against flax's nn.Conv -------------------------------------
def _torsos(orthogonal_init=True):
    return (CNNTorso((32,), "relu", orthogonal_init, conv_impl="xla"),
            CNNTorso((32,), "relu", orthogonal_init, conv_impl="patches"))


def test_conv_impl_by_backend(monkeypatch):
    assert conv_impl("auto") == ("patches" if jax.default_backend() == "cpu" else "xla")
    for backend in ("gpu", "tpu"):  # accelerators keep flax's nn.Conv program as it was: not slower there
        monkeypatch.setattr(jax, "default_backend", lambda b=backend: b)
        assert conv_impl("auto") == "xla"
    monkeypatch.undo()
    assert conv_impl("xla") == "xla" and conv_impl("patches") == "patches"
    with pytest.raises(ValueError, match="conv_impl"):
        conv_impl("im2col")


@pytest.mark.parametrize("orthogonal_init", [True, False])
def test_patch_conv_has_the_same_parameters(orthogonal_init):
    """Same tree, shapes and initial values on both paths: checkpoints and inits are interchangeable."""
    xla, patches = _torsos(orthogonal_init)
    x = jnp.zeros((1, 10, 10, 4))
    p_xla, p_patches = xla.init(jax.random.PRNGKey(3), x), patches.init(jax.random.PRNGKey(3), x)
    assert jax.tree.structure(p_xla) == jax.tree.structure(p_patches)
    jax.tree.map(np.testing.assert_array_equal, p_xla, p_patches)
    assert p_xla["params"]["Conv_0"]["kernel"].shape == (3, 3, 4, 16)
    assert p_xla["params"]["Conv_0"]["bias"].shape == (16,)


def _conv64(x, k, padding="SAME"):
    """nn.Conv's stride-1 NHWC × HWIO convolution without bias, on float64 operands (for the bounds)."""
    return jax.lax.conv_general_dilated(x, k, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _torso_bounds(params, x):
    """Bounds on |patches − xla| for CNNTorso((32,), "relu")'s output y and the gradients of Σ sin y.

    Forward (a 3×3 SAME conv C → F = 16 with bias, relu, a dense 100·F → 32 with bias, relu), each side within
    γ_n·Σ|terms| of exact, relu 1-Lipschitz:
        z1 = conv(x, K) + b1 sums 9C + 1 terms:  Δz1 ≤ 2γ_{9C+1}·(conv(|x|, |K|) + |b1|),   Δh ≤ Δz1
        z2 = h·W + b2 sums 100·F + 1:            Δz2 ≤ 2γ_{100F+1}·(|h||W| + |b2|) + Δh·|W|,  Δy ≤ Δz2
    Backward: ct = cos y moves by Δy (1-Lipschitz) + 2·FN·u; relu' keeps it where z > 0, and where |z| ≤ Δz the two
    sides' masks may differ (the whole |ct| there). Each VJP is a sum of products: g_b2 and g_W over the N rows,
    ct_h = ct·Wᵀ over 32, g_b1 and g_K over the N·100 positions, g_x over 9F; its |terms| are the reference VJP at
    absolute operands and cotangents, plus the VJP of the cotangent's bound (and for g_W, of Δh). In float64.
    """
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params["params"])
    k, b1 = p["Conv_0"]["kernel"], p["Conv_0"]["bias"]
    w, b2 = p["MLPTorso_0"]["Dense_0"]["kernel"], p["MLPTorso_0"]["Dense_0"]["bias"]
    shape = np.shape(x)
    x = np.asarray(x, np.float64).reshape(-1, *shape[-3:])
    n, (c, f) = x.shape[0], k.shape[2:]
    with jax.enable_x64(True):
        z1 = np.asarray(_conv64(x, k)) + b1
        dz1 = 2 * gamma(9 * c + 1) * (np.asarray(_conv64(np.abs(x), np.abs(k))) + np.abs(b1))
        h, dh = np.maximum(z1, 0).reshape(n, -1), dz1.reshape(n, -1)
        z2 = h @ w + b2
        dz2 = 2 * gamma(h.shape[1] + 1) * (h @ np.abs(w) + np.abs(b2)) + dh @ np.abs(w)
        ct, dct = np.cos(np.maximum(z2, 0)), dz2 + gamma(2 * FN)
        ct2, dct2 = ct * (z2 > 0), np.where(np.abs(z2) <= dz2, np.abs(ct) + dct, dct * (z2 > 0))
        g_b2 = 2 * gamma(n) * np.abs(ct2).sum(0) + dct2.sum(0)
        g_w = 2 * gamma(n) * h.T @ np.abs(ct2) + h.T @ dct2 + dh.T @ (np.abs(ct2) + dct2)
        ct_h = (ct2 @ w.T).reshape(z1.shape)
        dct_h = (2 * gamma(w.shape[1]) * np.abs(ct2) @ np.abs(w).T + dct2 @ np.abs(w).T).reshape(z1.shape)
        ct1, dct1 = ct_h * (z1 > 0), np.where(np.abs(z1) <= dz1, np.abs(ct_h) + dct_h, dct_h * (z1 > 0))
        g_b1 = 2 * gamma(n * 100) * np.abs(ct1).sum((0, 1, 2)) + dct1.sum((0, 1, 2))
        _, vjp = jax.vjp(_conv64, np.abs(x), np.abs(k))  # (x, K) ↦ Σ|x||K|: its VJP gives Σ|K||ct| and Σ|x||ct|
        (gx_terms, gk_terms), (gx_d, gk_d) = vjp(np.abs(ct1)), vjp(dct1)
        g_k = 2 * gamma(n * 100) * np.asarray(gk_terms) + np.asarray(gk_d)
        g_x = 2 * gamma(9 * f) * np.asarray(gx_terms) + np.asarray(gx_d)
    grads = {"params": {"Conv_0": {"bias": g_b1, "kernel": g_k},
                        "MLPTorso_0": {"Dense_0": {"bias": g_b2, "kernel": g_w}}}}
    return dz2.reshape(*shape[:-3], -1), (grads, g_x.reshape(shape))


def _loss(module, p, x):
    return jnp.sum(jnp.sin(module.apply(p, x)))


def _perturbed_params(xla, x):
    params = xla.init(jax.random.PRNGKey(1), x)
    # a random bias too, so the bias is checked, not just its zero init
    return jax.tree.map(lambda a: a + 0.1 * jax.random.normal(jax.random.PRNGKey(2), a.shape), params)


@pytest.mark.parametrize("batch_shape", [(7,), (3, 5)])
@pytest.mark.parametrize("channels", [4, 7])
def test_patch_conv_matches_flax_conv_values_and_gradients(batch_shape, channels):
    xla, patches = _torsos()
    x = jax.random.normal(jax.random.PRNGKey(0), (*batch_shape, 10, 10, channels))
    params = _perturbed_params(xla, x)
    want = xla.apply(params, x)
    assert want.shape == (*batch_shape, 32)
    y_bound, g_bound = _torso_bounds(params, x)
    assert_within(patches.apply(params, x), want, y_bound)
    g_xla = jax.grad(_loss, argnums=(1, 2))(xla, params, x)
    g_patches = jax.grad(_loss, argnums=(1, 2))(patches, params, x)
    jax.tree.map(assert_within, g_patches, g_xla, g_bound)


def test_torso_bounds_catch_a_transposed_kernel(monkeypatch):
    """The torso's bounds fail on a kernel with its spatial axes transposed in the patch matmul; the real one passes."""
    from jaxrl_policy.core import networks
    xla, patches = _torsos()
    x = jax.random.normal(jax.random.PRNGKey(0), (7, 10, 10, 4))
    params = _perturbed_params(xla, x)
    y_bound, g_bound = _torso_bounds(params, x)
    want, g_want = xla.apply(params, x), jax.grad(_loss, argnums=(1, 2))(xla, params, x)
    assert within(patches.apply(params, x), want, y_bound)
    real = networks.patch_conv_general_dilated
    monkeypatch.setattr(networks, "patch_conv_general_dilated",
                        lambda lhs, rhs, *a, **kw: real(lhs, rhs.transpose(1, 0, 2, 3), *a, **kw))
    assert not within(patches.apply(params, x), want, y_bound)
    bad = jax.grad(_loss, argnums=(1, 2))(patches, params, x)
    assert not within(bad[0]["params"]["Conv_0"]["kernel"], g_want[0]["params"]["Conv_0"]["kernel"],
                      g_bound[0]["params"]["Conv_0"]["kernel"])


def test_patch_conv_under_vmap():
    """vmap over seeds (params and inputs batched) as ``jit(vmap(train))`` does."""
    xla, patches = _torsos()
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 10, 10, 4))  # [S, B, H, W, C]
    params = jax.vmap(xla.init, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(1), 2), x[0])
    bounds = [_torso_bounds(jax.tree.map(lambda a, s=s: a[s], params), x[s]) for s in range(2)]

    for i, fn in enumerate((lambda m, p, x: m.apply(p, x), jax.grad(_loss, argnums=(1, 2)))):
        got = jax.vmap(lambda p, x: fn(patches, p, x))(params, x)  # noqa: B023
        want = jax.vmap(lambda p, x: fn(xla, p, x))(params, x)  # noqa: B023
        for s in range(2):
            jax.tree.map(assert_within, *jax.tree.map(lambda a, s=s: a[s], (got, want)), bounds[s][i])


def _conv_bounds(params, x, padding):
    """Bounds on |ours − lax| for nn.Conv's y = conv(x, K) + b and the gradients of Σ sin y (kernel kh×kw×C×F).

    y sums kh·kw·C + 1 terms: Δy ≤ 2γ·(conv(|x|, |K|) + |b|); ct = cos y moves by Δy + 2·FN·u; g_b and g_K sum
    over the N·H'·W' output positions, g_x over kh·kw·F, each bounded by 2γ_n·(the VJP at |x|, |K|, |ct|) + (the
    VJP of Δct). In float64.
    """
    k, b = (np.asarray(params["params"][n], np.float64) for n in ("kernel", "bias"))
    x = np.asarray(x, np.float64)
    kh, kw, c, f = k.shape
    with jax.enable_x64(True):
        y = np.asarray(_conv64(x, k, padding)) + b
        dy = 2 * gamma(kh * kw * c + 1) * (np.asarray(_conv64(np.abs(x), np.abs(k), padding)) + np.abs(b))
        ct, dct = np.abs(np.cos(y)), dy + gamma(2 * FN)
        m = ct.size // f  # output positions
        _, vjp = jax.vjp(lambda a, w: _conv64(a, w, padding), np.abs(x), np.abs(k))
        (gx_terms, gk_terms), (gx_d, gk_d) = vjp(ct), vjp(dct)
    g_b = 2 * gamma(m) * ct.reshape(-1, f).sum(0) + dct.reshape(-1, f).sum(0)
    g_k = 2 * gamma(m) * np.asarray(gk_terms) + np.asarray(gk_d)
    g_x = 2 * gamma(kh * kw * f) * np.asarray(gx_terms) + np.asarray(gx_d)
    return dy, ({"params": {"bias": g_b, "kernel": g_k}}, g_x)


def _conv_case(kernel_size, padding, primitive=patch_conv_general_dilated):
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 5, 3))
    conv, ours = nn.Conv(4, kernel_size, padding=padding), \
        nn.Conv(4, kernel_size, padding=padding, conv_general_dilated=primitive)
    p = conv.init(jax.random.PRNGKey(1), x)
    p = jax.tree.map(lambda a: a + 0.1 * jax.random.normal(jax.random.PRNGKey(2), a.shape), p)  # a bias ≠ 0
    return x, conv, ours, p


@pytest.mark.parametrize("padding", ["SAME", "VALID", [(2, 0), (1, 1)]])
@pytest.mark.parametrize("kernel_size", [(3, 3), (2, 3)])
def test_patch_conv_general_dilated_matches_lax(padding, kernel_size):
    """The primitive itself, for other paddings and kernel sizes than the torso's; values and gradients."""
    x, conv, ours, p = _conv_case(kernel_size, padding)
    y_bound, g_bound = _conv_bounds(p, x, padding)
    assert_within(ours.apply(p, x), conv.apply(p, x), y_bound)
    jax.tree.map(assert_within, jax.grad(_loss, argnums=(1, 2))(ours, p, x),
                 jax.grad(_loss, argnums=(1, 2))(conv, p, x), g_bound)
    assert "conv_general_dilated" not in str(jax.make_jaxpr(ours.apply)(p, x))  # patched, not passed on


def test_conv_bounds_catch_planted_bugs():
    """The derived bounds fail on a real bug's error, and the real patch convolution passes them: a kernel with its
    spatial axes transposed (dy, dx swapped in the patch matmul), and a conv-bias gradient dropped. (The torso's
    bounds, carried through its dense layer, catch the transposed kernel by ~500× but are above a dropped conv-bias
    gradient itself: that is this single-conv check's job.)"""
    x, conv, ours, p = _conv_case((3, 3), "SAME")
    y_bound, g_bound = _conv_bounds(p, x, "SAME")
    want, g_want = conv.apply(p, x), jax.grad(_loss, argnums=(1, 2))(conv, p, x)
    got = jax.grad(_loss, argnums=(1, 2))(ours, p, x)
    assert within(ours.apply(p, x), want, y_bound)
    assert all(jax.tree.leaves(jax.tree.map(within, got, g_want, g_bound)))
    bias = lambda g: g[0]["params"]["bias"]  # noqa: E731
    assert not within(jnp.zeros_like(bias(got)), bias(g_want), bias(g_bound))  # bias gradient dropped
    transposed = lambda lhs, rhs, *a, **kw: patch_conv_general_dilated(lhs, rhs.transpose(1, 0, 2, 3), *a, **kw)  # noqa: E731
    _, _, bad, _ = _conv_case((3, 3), "SAME", transposed)
    assert not within(bad.apply(p, x), want, y_bound)
    g_bad = jax.grad(_loss, argnums=(1, 2))(bad, p, x)
    assert not within(g_bad[0]["params"]["kernel"], g_want[0]["params"]["kernel"], g_bound[0]["params"]["kernel"])
    assert not within(g_bad[1], g_want[1], g_bound[1])


def test_patch_conv_passes_other_convolutions_on():
    """Strided (or dilated, grouped) convolutions are not patched: they go to lax unchanged."""
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3))
    conv, ours = nn.Conv(4, (3, 3), strides=2), nn.Conv(4, (3, 3), strides=2,
                                                        conv_general_dilated=patch_conv_general_dilated)
    p = conv.init(jax.random.PRNGKey(1), x)
    np.testing.assert_array_equal(ours.apply(p, x), conv.apply(p, x))
    assert "conv_general_dilated" in str(jax.make_jaxpr(ours.apply)(p, x))

"""Networks: shapes, heads, flattening, and the CPU code paths against flax's own Dense and Conv."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

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

    np.testing.assert_allclose(ours.apply(params, x), plain.apply(params, x), rtol=1e-6)
    g_plain = jax.grad(loss, argnums=(1, 2))(plain, params, x)
    g_ours = jax.grad(loss, argnums=(1, 2))(ours, params, x)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), g_ours, g_plain)
    # under vmap (seeds) as well
    vg = jax.vmap(lambda xx: jax.grad(loss, argnums=1)(ours, params, xx))(jnp.stack([x, 2 * x]))
    want = jax.grad(loss, argnums=1)(plain, params, 2 * x)["params"]["kernel"]
    np.testing.assert_allclose(vg["params"]["kernel"][1], want, rtol=1e-5, atol=1e-6)


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
    np.testing.assert_allclose(y_b, flat, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(y_tm.reshape(15, 8), y_b, rtol=1e-6, atol=1e-6)
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


# float32 sums of 9·C products in a different order: agreement to a few ulps of the outputs
RTOL, ATOL = 1e-5, 1e-5


@pytest.mark.parametrize("batch_shape", [(7,), (3, 5)])
@pytest.mark.parametrize("channels", [4, 7])
def test_patch_conv_matches_flax_conv_values_and_gradients(batch_shape, channels):
    xla, patches = _torsos()
    x = jax.random.normal(jax.random.PRNGKey(0), (*batch_shape, 10, 10, channels))
    params = xla.init(jax.random.PRNGKey(1), x)
    # a random bias too, so the bias is checked, not just its zero init
    params = jax.tree.map(lambda a: a + 0.1 * jax.random.normal(jax.random.PRNGKey(2), a.shape), params)
    want = xla.apply(params, x)
    assert want.shape == (*batch_shape, 32)
    np.testing.assert_allclose(patches.apply(params, x), want, rtol=RTOL, atol=ATOL)

    def loss(module, p, x):
        return jnp.sum(jnp.sin(module.apply(p, x)))

    g_xla = jax.grad(loss, argnums=(1, 2))(xla, params, x)
    g_patches = jax.grad(loss, argnums=(1, 2))(patches, params, x)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL), g_patches, g_xla)


def test_patch_conv_under_vmap():
    """vmap over seeds (params and inputs batched) as ``jit(vmap(train))`` does."""
    xla, patches = _torsos()
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 10, 10, 4))  # [S, B, H, W, C]
    params = jax.vmap(xla.init, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(1), 2), x[0])

    def loss(module, p, x):
        return jnp.sum(jnp.sin(module.apply(p, x)))

    for fn in (lambda m, p, x: m.apply(p, x), jax.grad(loss, argnums=(1, 2))):
        got = jax.vmap(lambda p, x: fn(patches, p, x))(params, x)  # noqa: B023
        want = jax.vmap(lambda p, x: fn(xla, p, x))(params, x)  # noqa: B023
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL), got, want)


@pytest.mark.parametrize("padding", ["SAME", "VALID", [(2, 0), (1, 1)]])
@pytest.mark.parametrize("kernel_size", [(3, 3), (2, 3)])
def test_patch_conv_general_dilated_matches_lax(padding, kernel_size):
    """The primitive itself, for other paddings and kernel sizes than the torso's."""
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 5, 3))
    conv, ours = nn.Conv(4, kernel_size, padding=padding), \
        nn.Conv(4, kernel_size, padding=padding, conv_general_dilated=patch_conv_general_dilated)
    p = conv.init(jax.random.PRNGKey(1), x)
    np.testing.assert_allclose(ours.apply(p, x), conv.apply(p, x), rtol=RTOL, atol=ATOL)
    assert "conv_general_dilated" not in str(jax.make_jaxpr(ours.apply)(p, x))  # patched, not passed on


def test_patch_conv_passes_other_convolutions_on():
    """Strided (or dilated, grouped) convolutions are not patched: they go to lax unchanged."""
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3))
    conv, ours = nn.Conv(4, (3, 3), strides=2), nn.Conv(4, (3, 3), strides=2,
                                                        conv_general_dilated=patch_conv_general_dilated)
    p = conv.init(jax.random.PRNGKey(1), x)
    np.testing.assert_array_equal(ours.apply(p, x), conv.apply(p, x))
    assert "conv_general_dilated" in str(jax.make_jaxpr(ours.apply)(p, x))

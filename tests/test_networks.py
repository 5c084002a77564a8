"""Networks: shapes, heads, and the CPU matmul gradient against flax's own Dense."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_policy.networks import ActorCritic, CNNTorso, QNetwork, cpu_dot_general


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
    logits, v = ac.apply(p, obs)
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

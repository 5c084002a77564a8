"""The ring of K unrolls: write position, the three sampling modes, under vmap."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_policy.core.storage import make_ring

T, E = 3, 2


def unroll(i):
    """A fake unroll [T, E] whose every entry is the iteration index that made it."""
    return {"x": jnp.full((T, E), i, jnp.float32), "obs": jnp.full((T, E, 4), i, jnp.float32)}


def filled(ring, n):
    st = ring.init(unroll(0))
    for i in range(n):
        st = ring.add(st, unroll(i))
    return st


def test_latest_is_the_newest_unroll():
    ring = make_ring(1, "latest")
    b = ring.sample(filled(ring, 5), jax.random.PRNGKey(0))
    assert b["x"].shape == (T, E) and float(b["x"].max()) == float(b["x"].min()) == 4.0


def test_unrolls_newest_first_then_uniform_over_the_last_k():
    ring = make_ring(4, "unrolls", num_draws=3)
    st = filled(ring, 10)  # holds iterations 6, 7, 8, 9
    keys = jax.random.split(jax.random.PRNGKey(1), 300)
    draws = np.stack([np.asarray(ring.sample(st, k)["x"][:, 0, 0]) for k in keys])
    assert draws.shape == (300, 3) and np.all(draws[:, 0] == 9)
    counts = np.bincount(draws[:, 1:].astype(int).ravel(), minlength=10)[6:]
    assert set(np.unique(draws[:, 1:])) == {6.0, 7.0, 8.0, 9.0} and counts.min() > 100  # ~150 each


def test_unrolls_only_from_filled_slots():
    ring = make_ring(8, "unrolls", num_draws=4)
    st = filled(ring, 2)
    for k in jax.random.split(jax.random.PRNGKey(2), 50):
        assert set(np.unique(ring.sample(st, k)["x"])) <= {0.0, 1.0}


def test_transitions_uniform_over_filled_and_shaped():
    ring = make_ring(5, "transitions", num_draws=2, batch_size=64)
    st = filled(ring, 7)  # holds iterations 2..6
    b = ring.sample(st, jax.random.PRNGKey(3))
    assert b["x"].shape == (2, 64) and b["obs"].shape == (2, 64, 4)
    np.testing.assert_array_equal(b["obs"][..., 0], b["x"])  # leaves stay aligned
    keys = jax.random.split(jax.random.PRNGKey(4), 40)
    xs = np.concatenate([np.asarray(ring.sample(st, k)["x"]).ravel() for k in keys])
    assert set(np.unique(xs)) == {2.0, 3.0, 4.0, 5.0, 6.0}
    assert np.bincount(xs.astype(int))[2:].min() > 0.15 * len(xs)


def test_ring_under_vmap_over_seeds():
    ring = make_ring(3, "unrolls", num_draws=2)
    st = jax.vmap(lambda _: ring.init(unroll(0)))(jnp.arange(2))
    add = jax.jit(jax.vmap(ring.add))
    for i in range(5):
        st = add(st, jax.tree.map(lambda x: jnp.stack([x, x + 100]), unroll(i)))
    b = jax.vmap(ring.sample)(st, jax.random.split(jax.random.PRNGKey(0), 2))
    assert float(b["x"][0, 0, 0, 0]) == 4.0 and float(b["x"][1, 0, 0, 0]) == 104.0
    assert set(np.unique(b["x"][0])) <= {2.0, 3.0, 4.0}

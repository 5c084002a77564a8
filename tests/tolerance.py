"""Float32 error bounds for the tests, derived from the computation checked, not from one machine's differences.

Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed. (SIAM 2002), §3.1:

- the model (2.4): fl(a op b) = (a op b)(1 + δ), |δ| ≤ u, for + − × ÷ (a fused multiply-add rounds once);
- Lemma 3.1: a product of n factors (1 + δ_i)^±1 is 1 + θ_n with |θ_n| ≤ γ_n = n·u / (1 − n·u);
- eq. (3.4)–(3.5): a dot product (or sum) of n terms, in *any* order, is within γ_n·Σ|x_i·y_i| of the exact value.

So two implementations that each meet (3.5) differ by at most 2·γ_n·Σ|x_i·y_i|. For a bilinear op (dense, conv)
Σ|x_i·y_i| elementwise is the same op applied to |x| and |w| (and a weight gradient's is |x|ᵀ|ct|), so a small
result of large terms (cancellation) gets a bound scaled by the terms, not by the result. Through a nonlinearity
the input's bound is carried to first order: sin, cos, tanh and relu are 1-Lipschitz.

u is float32's unit roundoff, ``U32 = 2**-24`` (round to nearest); numpy's ``np.finfo(np.float32).eps = 2**-23``
is the machine epsilon, 2u. exp, log, log1p, sin, cos and tanh are not correctly rounded: each counts as
``FN = 8`` roundings (4 ulp; XLA's and numpy's float32 versions measured within 4.6 u on the Zen 4 test machine).
"""
import numpy as np

U32 = 2.0 ** -24
FN = 8  # roundings charged for one transcendental function (exp, log, log1p, sin, cos, tanh)


def gamma(n, u=U32):
    """γ_n = n·u / (1 − n·u) (Higham, Lemma 3.1): the relative error of n roundings."""
    assert n * u < 1, n
    return n * u / (1 - n * u)


def _errors(actual, desired, bound):
    a, d = np.asarray(actual, np.float64), np.asarray(desired, np.float64)
    with np.errstate(invalid="ignore"):  # ∞ − ∞
        err = np.where(a == d, 0.0, np.abs(a - d))  # equal infinities agree; a nan never does
    return a, d, err, np.broadcast_to(np.asarray(bound, np.float64), err.shape)


def within(actual, desired, bound):
    """|actual − desired| ≤ bound elementwise (bound broadcastable)."""
    _, _, err, b = _errors(actual, desired, bound)
    return bool(np.all(err <= b))


def assert_within(actual, desired, bound, err_msg=""):
    """As ``within``; on failure names the worst element: its values, error, bound and error/bound."""
    a, d, err, b = _errors(actual, desired, bound)
    bad = ~(err <= b)
    if bad.any():
        ratio = np.where(bad, np.divide(err, b, out=np.full(err.shape, np.inf), where=b > 0), -1.0)
        i = np.unravel_index(np.argmax(np.nan_to_num(ratio, nan=np.inf)), err.shape)
        raise AssertionError(f"{err_msg + ': ' if err_msg else ''}{bad.sum()} of {bad.size} elements exceed the "
                             f"bound; worst at {tuple(int(j) for j in i)}: actual {float(a[i])!r}, desired "
                             f"{float(d[i])!r}, |error| {err[i]:.3g} > bound {b[i]:.3g} ({ratio[i]:.3g}× the bound)")


def log_softmax_err(logits):
    """Bound on |fl(log_softmax(x)) − log_softmax(x)| elementwise, last axis (any implementation of z − log Σ exp z).

    To first order: z = x − max x is off by u|z|; S = Σ_b exp z_b by a relative γ_{A−1} + FN·u + u·Σ_b p_b|z_b|, which
    log S carries as an absolute error, plus FN·u·log S of its own; log p_a = z_a − log S rounds once more
    (u|log p_a| ≤ u(|z_a| + log S)). In all ≤ γ_{A+FN}·(1 + 2|z_a| + 2 log S + Σ_b p_b|z_b|); terms with p_b = 0
    (a logit −inf or far below the rest) add nothing.
    """
    x = np.asarray(logits, np.float64)
    z = x - x.max(-1, keepdims=True)
    log_s = np.log(np.exp(z).sum(-1, keepdims=True))
    p = np.exp(z - log_s)
    with np.errstate(invalid="ignore"):  # 0·∞ where p = 0, discarded
        pz = np.where(p > 0, p * np.abs(z), 0.0).sum(-1, keepdims=True)
    return gamma(x.shape[-1] + FN) * (1 + 2 * np.abs(z) + 2 * log_s + pz)


def log_softmax64(logits):
    """log_softmax in float64 (−inf logits allowed)."""
    x = np.asarray(logits, np.float64)
    with np.errstate(invalid="ignore"):
        z = x - x.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def kl_bound(p_logits, q_logits):
    """Bound on |fl(KL(p ‖ q)) − KL(p ‖ q)| of Σ_a p_a (log p_a − log q_a) from logits, per row (last axis).

    log p and log q are off by E_p, E_q (log_softmax_err), p = exp(log p) by a relative E_p + FN·u, and the −, the ×
    and the A − 1 additions round: Σ_a p_a·(|d_a|·(E_p + γ_{FN+A+1}) + E_p + E_q), d = log p − log q."""
    lp, lq = log_softmax64(p_logits), log_softmax64(q_logits)
    ep, eq = log_softmax_err(p_logits), log_softmax_err(q_logits)
    p = np.exp(lp)
    with np.errstate(invalid="ignore"):
        terms = np.where(p > 0, p * (np.abs(lp - lq) * (ep + gamma(FN + lp.shape[-1] + 1)) + ep + eq), 0.0)
    return terms.sum(-1)

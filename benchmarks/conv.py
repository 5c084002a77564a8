#!/usr/bin/env python3
"""The CNN torso's convolution on CPU: flax's ``nn.Conv`` against patches + one matmul.

``PYTHONPATH=. python benchmarks/conv.py [--repeats 7] [--out FILE]`` times forward + backward
(one jitted ``jax.vjp`` with a fixed cotangent, returning the output and the gradients) of:

- ``conv xla``: the 3×3 SAME conv with 16 features as ``nn.Conv`` runs it (XLA:CPU's convolution);
- ``conv patches``: the same ``nn.Conv`` and parameters with ``networks.patch_conv_general_dilated``
  (shifted slices → ``[N·H·W, 9·C]`` patches → one matmul);
- ``conv cgdp``: patches from ``lax.conv_general_dilated_patches`` + the same matmul (the
  obvious alternative; it is itself a convolution on XLA:CPU);
- three ways around materialising the patches (9× the input), for the record of what was tried:
  ``conv 9 shifted matmuls`` (no patches: a ``[N·H·W, C] @ [C, F]`` matmul per kernel tap),
  ``conv row patches + 3 matmuls`` (patches along the width only, a third of the size) and
  ``conv patches, 128-blocks`` (the patches path on 128-observation blocks in a rematerialised
  ``lax.map``, so each block's patches stay in cache);
- ``dense same FLOPs``: ``nn.Dense`` ``[B, K] → [B, K]`` with ``K² = 9·C·F·H·W``, i.e. the
  conv's multiply-adds as one square matmul (the issue's target: conv within 2× of it);
- ``torso xla`` / ``torso patches``: the whole ``CNNTorso`` (conv, ReLU, flatten, Dense to the
  MinAtar hidden size) on each path, and ``mlp 64-64``: purejaxrl's flattened MinAtar MLP.

Shapes are the MinAtar defaults of ``config.env_defaults``: PPO (64 envs × 128 steps, 4
minibatches → M = 2048 observations per gradient step, hidden (256,)), PPO acting (64
observations, forward only) and DQN (batch 128, hidden (128,)); observations ``[B, 10, 10, C]``
with Breakout's C = 4.

Each program runs ``--steps`` steps inside one ``lax.scan`` (parameters as the carry), as the
training loop does: XLA:CPU's convolution is much slower inside a loop than as a jitted call of
its own, which is what the last column shows. Every step gets its own observations and
cotangent (the scan runs over ``[steps, …]`` stacks), as every minibatch of training does:
with one input for all steps XLA hoists the loop-invariant work (the patches, the transposed
cotangent) out of the loop, which made the runs before 2026-11-28 r3 report ~2.6× where ~5.4×
is the truth. ``bytes only`` is the memory floor as XLA compiles it: one elementwise op that
reads the observations, writes an output of the conv's shape and takes its parameter gradient
against the same cotangent (the conv's operands moved, no multiply-adds). Gradients are taken
w.r.t. the parameters only, as training does (observations are data); another column adds the
input gradient. Before timing, the forward outputs of every conv and torso variant are checked
equal to ``nn.Conv``'s (float tolerance). All programs are compiled first, then timed in
``--repeats`` interleaved rounds so load from other processes hits all of them alike; min and
median are reported in milliseconds. ``--profile`` adds, per case, one scanned step of ``conv
patches`` split by XLA operation. JSON goes to stdout (and ``--out``), a markdown table to
stderr.

Shape legend: ``B`` batch, ``H, W, C`` image, ``F`` conv features, ``K`` dense width.
"""
from __future__ import annotations

import argparse
import collections
import datetime as _dt
import glob
import gzip
import json
import math
import re
import statistics
import sys
import tempfile
import time
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrl_policy.core import networks  # (importing jaxrl_policy applies its XLA:CPU deadlock guard
from jaxrl_policy.io.metadata import run_metadata

H = W = 10
FEATURES = 16
CASES = {  # name: (batch, channels, hidden_sizes, backward?)
    "ppo_minibatch": (2048, 4, (256,), True),
    "ppo_acting": (64, 4, (256,), False),
    "dqn_batch": (128, 4, (128,), True),
}


def _cgdp_conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None, dimension_numbers=None,
               feature_group_count=1, batch_group_count=1, precision=None, preferred_element_type=None):
    """Patches from ``lax.conv_general_dilated_patches`` (features ordered ``(c, dy, dx)``) + one matmul."""
    kh, kw, c, f = rhs.shape
    p = jax.lax.conv_general_dilated_patches(lhs, (kh, kw), window_strides, padding,
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
    # HWIO → (c, dy, dx) rows to match the patches' channel-major feature order
    return p @ jnp.transpose(rhs, (2, 0, 1, 3)).reshape(c * kh * kw, f)


def _padded(lhs, rhs, padding) -> tuple[jax.Array, int, int]:
    """The padded input and the output height and width of a stride-1 conv (as ``networks._patches``)."""
    kh, kw = rhs.shape[:2]
    (t, b), (left, right) = jax.lax.padtype_to_pads(lhs.shape[1:3], (kh, kw), (1, 1), padding) \
        if isinstance(padding, str) else padding
    xp = jnp.pad(lhs, ((0, 0), (t, b), (left, right), (0, 0)))
    return xp, xp.shape[1] - kh + 1, xp.shape[2] - kw + 1


def _shifted_conv(lhs, rhs, window_strides, padding, *args, **kwargs):
    """No patches: the sum of kh·kw matmuls of shifted input views ``[N, H, W, C] @ [C, F]``."""
    kh, kw = rhs.shape[:2]
    xp, ho, wo = _padded(lhs, rhs, padding)
    return sum(xp[:, i:i + ho, j:j + wo, :] @ rhs[i, j] for i in range(kh) for j in range(kw))


def _row_patches_conv(lhs, rhs, window_strides, padding, *args, **kwargs):
    """A third of the patches: patches along the width only (``[N, H+2, W, kw·C]``), then kh matmuls
    of row-shifted views with ``rhs[dy]`` reshaped ``[kw·C, F]``."""
    kh, kw, c, f = rhs.shape
    xp, ho, wo = _padded(lhs, rhs, padding)
    px = jnp.concatenate([xp[:, :, j:j + wo, :] for j in range(kw)], axis=-1)
    return sum(px[:, i:i + ho] @ rhs[i].reshape(kw * c, f) for i in range(kh))


def _blocked_conv(lhs, rhs, window_strides, padding, *args, **kwargs):
    """Cache blocking: ``networks.patch_conv_general_dilated`` on 128-observation blocks in a
    ``lax.map``, rematerialised (``jax.checkpoint``) so the backward pass rebuilds each block's
    patches instead of keeping all of them (9× the input) between the passes."""
    n, block = lhs.shape[0], 128
    if n % block or n == block:
        return networks.patch_conv_general_dilated(lhs, rhs, window_strides, padding, *args, **kwargs)
    one = jax.checkpoint(lambda x: networks.patch_conv_general_dilated(x, rhs, window_strides, padding,
                                                                       *args, **kwargs))
    out = jax.lax.map(one, lhs.reshape(n // block, block, *lhs.shape[1:]))
    return out.reshape(n, *out.shape[2:])


class _BytesOnly(nn.Module):
    """``[B, H, W, C] → [B, H, W, F]`` with one multiply per output: the conv's memory traffic alone."""
    features: int

    @nn.compact
    def __call__(self, x):
        scale = self.param("scale", nn.initializers.ones, ())
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return jnp.sum(x, -1, keepdims=True) * scale + bias


def modules(batch: int, channels: int, hidden: tuple[int, ...]) -> dict[str, tuple[nn.Module, tuple[int, ...]]]:
    """name → (module, input shape)."""
    k = math.isqrt(9 * channels * FEATURES * H * W)  # square dense with the conv's multiply-adds
    assert k * k == 9 * channels * FEATURES * H * W, k
    img = (batch, H, W, channels)
    return {
        "conv xla": (nn.Conv(FEATURES, (3, 3)), img),
        "conv patches": (nn.Conv(FEATURES, (3, 3), conv_general_dilated=networks.patch_conv_general_dilated), img),
        "conv cgdp": (nn.Conv(FEATURES, (3, 3), conv_general_dilated=_cgdp_conv), img),
        "conv 9 shifted matmuls": (nn.Conv(FEATURES, (3, 3), conv_general_dilated=_shifted_conv), img),
        "conv row patches + 3 matmuls": (nn.Conv(FEATURES, (3, 3), conv_general_dilated=_row_patches_conv), img),
        "conv patches, 128-blocks": (nn.Conv(FEATURES, (3, 3), conv_general_dilated=_blocked_conv), img),
        f"dense same FLOPs ({k}→{k})": (nn.Dense(k, dot_general=networks.cpu_dot_general), (batch, k)),
        "bytes only (x → y, no FLOPs)": (_BytesOnly(FEATURES), img),
        "torso xla": (networks.CNNTorso(hidden, "relu", conv_impl="xla"), img),
        "torso patches": (networks.CNNTorso(hidden, "relu", conv_impl="patches"), img),
        "mlp 64-64": (networks.MLPTorso((64, 64), "tanh", obs_ndim=3), img),
    }


def check_same_values(mods: dict[str, tuple[nn.Module, tuple[int, ...]]]) -> None:
    """Every conv (and torso) variant computes ``nn.Conv``'s values with ``nn.Conv``'s parameters."""
    convs = tuple(k for k in mods if k.startswith("conv ") and k != "conv xla")
    for ref, names in (("conv xla", convs), ("torso xla", ("torso patches",))):
        m, shape = mods[ref]
        x = jax.random.normal(jax.random.PRNGKey(0), shape)
        params = m.init(jax.random.PRNGKey(1), x)
        params = jax.tree.map(lambda a: a + 0.1 * jax.random.normal(jax.random.PRNGKey(2), a.shape), params)
        want = m.apply(params, x)
        for name in names:
            got = mods[name][0].apply(params, x)
            err = float(jnp.max(jnp.abs(got - want)))
            assert err <= 1e-4 * (1 + float(jnp.max(jnp.abs(want)))), (name, err)


def program(module: nn.Module, shape: tuple[int, ...], backward: bool, wrt_input: bool, steps: int
            ) -> tuple[Callable, tuple]:
    """A compiled forward (+ vjp) of ``module`` on random inputs, and its arguments.

    ``steps > 0``: ``steps`` SGD-like steps inside one ``lax.scan`` over ``steps`` different
    inputs and cotangents (the parameters are the carry), as the training loop runs its
    minibatches; returns the final parameters and each step's ``sum(y)``. ``steps = 0``: one step
    as a jitted call of its own.
    """
    n = max(1, steps)
    xs = (jax.random.uniform(jax.random.PRNGKey(0), (n, *shape)) < 0.1).astype(jnp.float32)  # sparse binary, as MinAtar
    params = module.init(jax.random.PRNGKey(1), xs[0])
    y = jax.eval_shape(module.apply, params, xs[0])
    cts = jax.random.normal(jax.random.PRNGKey(2), (n, *y.shape), y.dtype)

    def step(p, x, ct):
        if not backward:
            y = module.apply(p, x)
            return y, jax.tree.map(lambda a: jnp.zeros_like(a) + jnp.mean(y), p)
        if wrt_input:
            y, vjp = jax.vjp(module.apply, p, x)
            g, gx = vjp(ct)
            return y, jax.tree.map(lambda a: a + jnp.mean(gx), g)
        y, vjp = jax.vjp(lambda p: module.apply(p, x), p)
        return y, vjp(ct)[0]

    def scanned(p, xs, cts):
        def body(p, x_ct):
            y, g = step(p, *x_ct)
            return jax.tree.map(lambda a, b: a - 1e-6 * b, p, g), jnp.sum(y)  # all of y is used
        return jax.lax.scan(body, p, (xs, cts))

    args = (params, xs, cts) if steps else (params, xs[0], cts[0])
    return jax.jit(scanned if steps else step).lower(*args).compile(), args


def time_all(progs: dict[str, tuple[Callable, tuple, int]], repeats: int) -> dict[str, dict[str, float]]:
    """ms per step (min and median over ``repeats`` interleaved rounds) of each ``(fn, args, steps)``."""
    times: dict[str, list[float]] = {k: [] for k in progs}
    for fn, args, _ in progs.values():  # warm-up
        jax.block_until_ready(fn(*args))
    for _ in range(repeats):
        for k, (fn, args, steps) in progs.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn(*args))
            times[k].append((time.perf_counter() - t0) / max(1, steps))
    return {k: {"min_ms": 1e3 * min(v), "median_ms": 1e3 * statistics.median(v)} for k, v in times.items()}


def profile(fn: Callable, args: tuple, steps: int, runs: int = 3, top: int = 10) -> list[dict[str, Any]]:
    """ms per step of each XLA operation of a compiled scanned program (``jax.profiler`` trace),
    largest first: where the time of one step goes."""
    text = fn.as_text()
    what = {m[0]: f"{m[1]} {m[2]}" for m in re.findall(r"%([\w.\-]+) = (\w+\[[\d,]*\])\S* ([\w\-]+)\(", text)}
    what = {k: v for k, v in what.items() if not v.endswith(" while")}  # the loop encloses everything
    jax.block_until_ready(fn(*args))
    with tempfile.TemporaryDirectory() as d:
        jax.profiler.start_trace(d)
        for _ in range(runs):
            jax.block_until_ready(fn(*args))
        jax.profiler.stop_trace()
        (trace,) = glob.glob(f"{d}/**/*.trace.json.gz", recursive=True)
        with gzip.open(trace) as f:
            events = json.load(f)["traceEvents"]
    total: collections.Counter[str] = collections.Counter()
    for e in events:
        if e.get("ph") == "X" and e.get("name") in what:
            total[e["name"]] += e["dur"]  # µs
    return [{"op": k, "what": what[k], "ms_per_step": v / 1e3 / (runs * steps)} for k, v in total.most_common(top)]


COLUMNS = {  # column: (backward, w.r.t. input, scanned?)
    "scan": (True, False, True),
    "scan+input": (True, True, True),
    "call": (True, False, False),
}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7, help="timed rounds (default 7)")
    ap.add_argument("--steps", type=int, default=8, help="steps per scanned program (default 8)")
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--out", default=None, help="also write the JSON here")
    ap.add_argument("--profile", action="store_true",
                    help="also split one scanned step of 'conv patches' (each case) by XLA operation")
    a = ap.parse_args(argv)

    results: dict[str, Any] = {}
    for case in a.cases:
        batch, channels, hidden, backward = CASES[case]
        mods = modules(batch, channels, hidden)
        check_same_values(mods)
        cols = COLUMNS if backward else {"scan": (False, False, True), "call": (False, False, False)}
        progs = {(name, col): (*program(m, s, bwd, wrt_x, a.steps if scanned else 0), a.steps if scanned else 1)
                 for name, (m, s) in mods.items() for col, (bwd, wrt_x, scanned) in cols.items()}
        t = time_all(progs, a.repeats)
        rows: dict[str, Any] = {name: {col: t[(name, col)] for col in cols} for name in mods}
        dense = next(k for k in mods if k.startswith("dense"))
        for name in mods:
            rows[name]["over_dense"] = rows[name]["scan"]["median_ms"] / rows[dense]["scan"]["median_ms"]
        results[case] = {"batch": batch, "obs_shape": [H, W, channels], "hidden_sizes": list(hidden),
                         "backward": backward, "columns": list(cols), "rows": rows}
        if a.profile:
            fn, args, steps = progs[("conv patches", "scan")]
            results[case]["profile_conv_patches"] = profile(fn, args, steps)

    out = {"benchmark": "conv", "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
           "repeats": a.repeats, "steps": a.steps, "machine": run_metadata(), "results": results,
           "target": "conv patches (forward + weight gradient, in a scan) within 2x of the same-FLOPs dense layer"}
    text = json.dumps(out, indent=1)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    print(markdown(out), file=sys.stderr)
    return out


HEADERS = {"scan": "in lax.scan, grad params", "scan+input": "in lax.scan, grad params + input",
           "call": "one jitted call, grad params"}


def markdown(out: dict[str, Any]) -> str:
    lines = [f"CPU: {out['machine']['cpu']} ({out['machine']['cores']} cores), {out['repeats']} rounds, "
             f"{out['steps']} steps per scan; ms per step, min / median; ÷ dense = median in lax.scan over the "
             "same-FLOPs dense layer's", ""]
    for case, r in out["results"].items():
        kind = "forward + backward" if r["backward"] else "forward only"
        cols = r["columns"]
        heads = [HEADERS[c] if r["backward"] else HEADERS[c].replace(", grad params", "") for c in cols]
        lines += [f"**{case}** (obs [{r['batch']}, {', '.join(map(str, r['obs_shape']))}], {kind})", "",
                  "| program | " + " | ".join(heads[:1] + ["÷ dense"] + heads[1:]) + " |",
                  "|---" * (len(cols) + 2) + "|"]
        for name, v in r["rows"].items():
            cells = [f"{v[c]['min_ms']:.2f} / {v[c]['median_ms']:.2f}" for c in cols]
            lines.append(f"| {name} | " + " | ".join(cells[:1] + [f"{v['over_dense']:.2f}"] + cells[1:]) + " |")
        lines.append("")
        if "profile_conv_patches" in r:
            lines += ["conv patches, one scanned step by XLA operation (ms): " + ", ".join(
                f"{p['op']} ({p['what']}) {p['ms_per_step']:.2f}" for p in r["profile_conv_patches"]), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

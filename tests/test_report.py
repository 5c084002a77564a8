"""Tests for jaxrl_policy.report (curves with CIs, markdown summary, plots)."""

import math
import sys

import numpy as np
import pytest

from jaxrl_policy.report import curve_with_ci, plot_curves, summary_markdown

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _toy_returns():
    return np.array(
        [
            [1.0, np.nan, np.nan, 5.0],
            [2.0, 4.0, np.nan, 5.0],
            [3.0, 4.0, np.nan, 5.0],
            [100.0, 4.0, np.nan, 5.0],
        ]
    )  # [S=4, N=4]


def test_curve_with_ci_hand_checkable():
    steps = [0, 10, 20, 30]
    out = curve_with_ci(steps, _toy_returns(), reps=500)
    assert set(out) == {"steps", "iqm", "low", "high"}
    for k in out:
        assert out[k].shape == (4,)
    np.testing.assert_array_equal(out["steps"], [0, 10, 20, 30])
    # point 0: sorted [1, 2, 3, 100], drop 1 each end -> mean(2, 3) = 2.5
    assert out["iqm"][0] == pytest.approx(2.5)
    assert out["low"][0] <= 2.5 <= out["high"][0]
    assert out["low"][0] >= 1.0 and out["high"][0] <= 100.0
    # point 1: NaN seed dropped -> [4, 4, 4], zero-width CI
    assert out["iqm"][1] == pytest.approx(4.0)
    assert (out["low"][1], out["high"][1]) == (4.0, 4.0)
    # point 2: all NaN -> NaN
    assert all(math.isnan(out[k][2]) for k in ("iqm", "low", "high"))
    # point 3: constant
    assert (out["iqm"][3], out["low"][3], out["high"][3]) == (5.0, 5.0, 5.0)


def test_curve_with_ci_deterministic_and_level():
    rng = np.random.default_rng(0)
    r = rng.normal(size=(8, 5))
    a = curve_with_ci(np.arange(5), r, seed=3)
    b = curve_with_ci(np.arange(5), r, seed=3)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    narrow = curve_with_ci(np.arange(5), r, level=0.5)
    assert np.all(narrow["high"] - narrow["low"] < a["high"] - a["low"])
    assert np.all((a["low"] <= a["iqm"]) & (a["iqm"] <= a["high"]))


def test_curve_with_ci_shapes():
    out = curve_with_ci([1, 2], [3.0, 4.0])  # [N] -> S = 1
    np.testing.assert_array_equal(out["iqm"], [3.0, 4.0])
    with pytest.raises(ValueError):
        curve_with_ci([1, 2, 3], np.zeros((4, 2)))


def _runs():
    return [
        {
            "algo": "ppo",
            "env": "CartPole-v1",
            "seeds": [0, 1, 2],
            "total_timesteps": 1_000_000,
            "final_return": [500.0, 497.34, 480.06],
            "final_return_iqm": 497.34,
            "final_return_ci": [480.06, 500.0],
            "env_steps_per_s": 1234567.8,
            "compile_s": 12.345,
            "wall_s": 45.67,
        },
        {
            "algo": "dqn",
            "env": "CartPole-v1",
            "seeds": [0, 1],
            "total_timesteps": 500_000,
            "final_return": [150.25, float("nan")],
            "final_return_iqm": 150.25,
            "final_return_ci": [150.25, 150.25],
            "env_steps_per_s": 98765.4,
            "compile_s": 3.0,
            "wall_s": 9.04,
        },
    ]


def test_summary_markdown_rows_and_formatting():
    md = summary_markdown(_runs())
    lines = md.splitlines()
    table = [ln for ln in lines if ln.startswith("|")]
    assert len(table) == 2 + 2  # header + separator + one row per run
    header = table[0]
    for col in (
        "algo",
        "env",
        "seeds",
        "env steps",
        "final return IQM [95% CI]",
        "per-seed final returns",
        "env-steps/s",
        "compile s",
        "wall s",
    ):
        assert col in header
    assert set(table[1].replace("|", "").replace(":", "")) == {"-"}
    ppo = next(ln for ln in table if "| ppo |" in ln)
    dqn = next(ln for ln in table if "| dqn |" in ln)
    assert "CartPole-v1" in ppo and "CartPole-v1" in dqn
    assert "1,000,000" in ppo and "500,000" in dqn
    assert "497.3 [480.1, 500.0]" in ppo
    assert "500.0, 497.3, 480.1" in ppo
    assert "1,234,568" in ppo and "98,765" in dqn
    assert "12.3" in ppo and "45.7" in ppo
    assert "150.2 [150.2, 150.2]" in dqn or "150.3 [150.3, 150.3]" in dqn
    assert "—" in dqn  # NaN per-seed return
    assert "0, 1, 2" in ppo
    # every row has the same number of cells as the header
    assert all(ln.count("|") == header.count("|") for ln in table)
    assert "last 5% of the env-step budget" in md
    assert "IQM over seeds, 95% stratified bootstrap CI" in md


def test_summary_markdown_missing_values():
    md = summary_markdown([{"algo": "vtrace", "env": "a|b", "seeds": [0]}])
    row = [ln for ln in md.splitlines() if "vtrace" in ln][0]
    assert "a\\|b" in row
    assert "—" in row


def test_plot_curves_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(0)
    steps = np.arange(0, 10_000, 1_000)
    curves = {
        "ppo": curve_with_ci(steps, rng.normal(size=(4, 10)).cumsum(axis=1), reps=200),
        "dqn": curve_with_ci(steps, _nan_curve(rng), reps=200),
    }
    path = tmp_path / "sub" / "curves.png"
    out = plot_curves(curves, path, title="CartPole-v1")
    assert out == str(path)
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 1000


def _nan_curve(rng):
    r = rng.normal(size=(4, 10))
    r[:, 0] = np.nan
    r[0, 5] = np.nan
    return r


def test_plot_curves_missing_matplotlib(monkeypatch, tmp_path):
    for mod in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, mod, None)
    with pytest.raises(ImportError, match=r"jaxrl-policy\[plots\]"):
        plot_curves({}, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()

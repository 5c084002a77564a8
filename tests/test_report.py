"""Tests for the report (results/, io/runfolder.py): curves with CIs, markdown and LaTeX tables, POI, figures,
load_runs, bad input."""

import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxrl_policy.cli.main import main
from jaxrl_policy.io.runfolder import find_run_dirs, read_metrics
from jaxrl_policy.results import efficiency, matrices, scores, stats
from jaxrl_policy.results.analysis import parse_thresholds
from jaxrl_policy.results.curves import curve_with_ci
from jaxrl_policy.results.figures import plot_curves
from jaxrl_policy.results.frame import load_runs
from jaxrl_policy.results.report import report_runs
from jaxrl_policy.results.tables import latex_escape, summary_markdown

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


# ---- run folders → tables, statistics, figures -------------------------------------------------

PDF_MAGIC = b"%PDF"


def make_run(d, algo, env, evals, trains=None, budget=1000, hparams=None, extra_metrics=True):
    """A run folder by hand: ``evals[s, w]`` eval returns per seed and window (NaN: no evaluation there),
    ``trains[s, w]`` training returns (2 episodes per window); window w ends at (w + 1) · budget / W env steps."""
    evals = np.asarray(evals, dtype=float)
    trains = np.full_like(evals, 7.0) if trains is None else np.asarray(trains, dtype=float)
    S, W = evals.shape
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    rows = []
    for w in range(W):
        for s in range(S):
            row = {"seed": s, "iteration": w + 1, "env_steps": (w + 1) * budget // W, "episode_return": trains[s, w],
                   "episodes": 2, "eval_return": None if np.isnan(evals[s, w]) else evals[s, w],
                   "grad_steps": 4.0 * (w + 1), "wall_s": 0.1 * (w + 1)}
            if extra_metrics:
                row["loss"] = 0.5 + s
            rows.append(row)
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    fe = [None if np.isnan(v) else float(v) for v in evals[:, -1]]
    agg, agg_e = stats.aggregate(trains[:, -1]), stats.aggregate(evals[:, -1])
    summary = {"algo": algo, "env": env, "seeds": list(range(S)), "total_timesteps": budget, "env_steps": budget,
               "final_return": [float(v) for v in trains[:, -1]], "final_return_iqm": agg["iqm"],
               "final_return_ci": agg["iqm_ci"], "final_eval_return": fe, "final_eval_return_iqm": agg_e["iqm"],
               "final_eval_return_ci": agg_e["iqm_ci"], "env_steps_per_s": 1000, "compile_s": 1.0, "wall_s": 2.0}
    if hparams is not None:
        summary["hparams"] = hparams
    (d / "summary.json").write_text(json.dumps(summary))
    (d / "config.json").write_text(json.dumps({"algo": algo, "env_id": env}))
    return d


def make_compare(d, runs):
    """A compare folder: one run folder per (algo, evals) plus summary.json {"runs": [...]}."""
    d = Path(d)
    for algo, env, evals in runs:
        make_run(d / algo, algo, env, evals)
    (d / "summary.json").write_text(json.dumps({"runs": [json.loads((d / a / "summary.json").read_text())
                                                         for a, _, _ in runs]}))
    return d


W = 10
RAMP = np.array([[(w + 1) * (s + 1) for w in range(W)] for s in range(4)], dtype=float)  # [S=4, W]: final 10..40
FINAL_D = np.array([5.0, 25.0, 35.0, 0.0])


def toy_runs():
    return [("a_b%", "My_Env&1", RAMP), ("c", "My_Env&1", np.zeros((4, W))),
            ("d", "My_Env&1", FINAL_D[:, None] * np.arange(1, W + 1)[None, :] / W)]


@pytest.fixture(scope="module")
def toy_report(tmp_path_factory):
    """One compare folder of three hand-made algorithms, reported through the CLI (figures included)."""
    pytest.importorskip("matplotlib")
    root = tmp_path_factory.mktemp("toy")
    cmp_dir = make_compare(root / "cmp", toy_runs())
    out = root / "rep"
    main(["report", str(cmp_dir), "--out", str(out), "--threshold", "3"])
    res = report_runs([cmp_dir], root / "rep2", threshold=3.0, figures=False)
    return out, res


def _fmt_ci(est, spec=".1f"):
    return f"{format(est['iqm'], spec)} [{format(est['iqm_ci'][0], spec)}, {format(est['iqm_ci'][1], spec)}]"


def test_table_tex_booktabs_escaping_and_hand_checked_numbers(toy_report):
    out, _ = toy_report
    tex = (out / "table.tex").read_text()
    lines = tex.splitlines()
    assert lines.count("\\toprule") == 1 and lines.count("\\bottomrule") == 1 and lines.count("\\midrule") == 1
    assert lines.index("\\toprule") < lines.index("\\midrule") < lines.index("\\bottomrule")
    body = [ln for ln in lines if ln.endswith("\\\\")]
    assert len(body) == 1 + 3  # header + one row per algorithm
    assert all(ln.count(" & ") == 5 for ln in body)  # six columns
    assert "My\\_Env\\&1 ($\\geq$ 3)" in body[1]
    a, c, d = body[1:]
    assert " & a\\_b\\% & " in a and " & c & " in c
    # a: final evals 10, 20, 30, 40 -> IQM 25; training returns all 7
    assert f"& {_fmt_ci(stats.aggregate([10, 20, 30, 40]))} &" in a
    assert "& 7.0 [7.0, 7.0] &" in a
    # AUC of the linear eval curve (s+1)·(w+1) over 100..1000 steps: (s+1)·5.5 -> IQM of 5.5, 11, 16.5, 22 = 13.75
    assert f"& {_fmt_ci(stats.aggregate([5.5, 11.0, 16.5, 22.0]))} &" in a and "13.8 [" in a
    # steps to 3: seeds reach it at 300, 200, 100, 100 env steps -> IQM 150
    est = efficiency.threshold_estimates(np.array([300.0, 200.0, 100.0, 100.0]))["iqm"]
    assert a.endswith(f"& {est.point:,.0f} [{est.low:,.0f}, {est.high:,.0f}] \\\\") and "150 [" in a
    # c never gets there: shown as more than its last evaluation, with the count of runs that did
    assert c.endswith("& $>$ 1,000 (0/4 runs reached) \\\\")
    assert "& 0.0 [0.0, 0.0] &" in c


def test_latex_escape_and_thresholds():
    assert latex_escape("a_b&c%d$e#f{g}h~i^j\\k") == (
        "a\\_b\\&c\\%d\\$e\\#f\\{g\\}h\\textasciitilde{}i\\textasciicircum{}j\\textbackslash{}k")
    assert latex_escape("[x]") == "{[}x{]}"  # a cell after \\ must not read as its optional argument
    assert parse_thresholds([]) is None
    assert parse_thresholds(["400"]) == 400.0
    assert parse_thresholds(["CartPole-v1=400", "Acrobot-v1=-100"]) == {"CartPole-v1": 400.0, "Acrobot-v1": -100.0}
    with pytest.raises(ValueError, match="X or ENV=X"):
        parse_thresholds(["abc"])
    with pytest.raises(ValueError, match="not both"):
        parse_thresholds(["1", "CartPole-v1=2"])


def test_poi_matrix_matches_stats(toy_report):
    out, res = toy_report
    finals = {"a_b%": RAMP[:, -1], "c": np.zeros(4), "d": FINAL_D}
    assert set(res["poi"]) == {(x, y) for x in finals for y in finals if x != y}
    md = (out / "summary.md").read_text()
    poi_md = md[md.index("## Probability of improvement"):md.index("## Notes")]
    for (x, y), e in res["poi"].items():
        want = matrices.probability_of_improvement_estimate(finals[x][:, None], finals[y][:, None])
        assert (e.point, e.low, e.high) == pytest.approx(tuple(want))
        assert e.point + res["poi"][(y, x)].point == pytest.approx(1.0)
        row = next(ln for ln in poi_md.splitlines() if ln.startswith(f"| {x} | "))
        assert f"{want.point:.2f} [{want.low:.2f}, {want.high:.2f}]" in row
    assert 0.0 < res["poi"][("a_b%", "d")].point < 1.0  # a non-trivial cell
    assert "IQM" in md and "matched env-step budget" in md and "half-way from a uniform-random" in md


def test_figures_are_valid_png_and_pdf(toy_report):
    from matplotlib.image import imread

    out, _ = toy_report
    for stem in ("returns", "final_scores", "poi", "profiles"):
        png, pdf = (out / f"{stem}.png").read_bytes(), (out / f"{stem}.pdf").read_bytes()
        assert png[:8] == PNG_MAGIC and len(png) > 10_000, stem
        assert pdf[:4] == PDF_MAGIC and len(pdf) > 5_000, stem
        img = imread(out / f"{stem}.png")
        assert img.shape[0] > 300 and img.shape[1] > 300
        rgb = np.round(img[..., :3] * 255).astype(np.int64)
        assert len(np.unique(rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2])) > 20, stem  # not blank


def test_several_tasks_aggregate_normalised_and_refusals(tmp_path):
    ramp_cp = 30.0 * RAMP  # CartPole-v1 scale
    ramp_ac = -500.0 + 10.0 * RAMP
    dirs = [make_run(tmp_path / "x_cp", "x", "CartPole-v1", ramp_cp),
            make_run(tmp_path / "y_cp", "y", "CartPole-v1", ramp_cp[::-1] * 0.5),
            make_run(tmp_path / "x_ac", "x", "Acrobot-v1", ramp_ac),
            make_run(tmp_path / "y_ac", "y", "Acrobot-v1", ramp_ac[::-1] + 5.0)]
    res = report_runs(dirs, tmp_path / "rep", figures=False)
    assert res["tasks"] == ["CartPole-v1", "Acrobot-v1"]
    agg = {a["label"]: a for a in res["aggregate"]}
    for lab, (cp, ac) in {"x": (ramp_cp, ramp_ac), "y": (ramp_cp[::-1] * 0.5, ramp_ac[::-1] + 5.0)}.items():
        want = scores.aggregate_tasks({"CartPole-v1": cp[:, -1], "Acrobot-v1": ac[:, -1]})
        assert agg[lab]["eval"]["iqm"] == pytest.approx(want["iqm"])
        assert agg[lab]["eval"]["ci"] == pytest.approx(want["iqm_ci"])
    mx = np.stack([ramp_cp[:, -1], ramp_ac[:, -1]], axis=1)
    my = np.stack([ramp_cp[::-1, -1] * 0.5, ramp_ac[::-1, -1] + 5.0], axis=1)
    want = matrices.probability_of_improvement_estimate(mx, my)
    assert tuple(res["poi"][("x", "y")]) == pytest.approx(tuple(want))
    assert "aggregate over 2 tasks (normalised)" in res["markdown"] and "Aggregate (normalised)" in res["table"]
    # default thresholds: half-way from random to the reference score
    e = scores.NORMALIZATION["CartPole-v1"]
    assert res["thresholds"]["CartPole-v1"] == pytest.approx(e.random + 0.5 * (e.reference - e.random))

    # mixing an env without normalisation scores: refused, naming it, unless --no-aggregate
    odd = make_run(tmp_path / "odd", "x", "MyEnv-v0", RAMP)
    with pytest.raises(ValueError, match=r"MyEnv-v0 has no normalisation scores.*--no-aggregate"):
        report_runs(dirs + [odd], tmp_path / "rep2", figures=False)
    res = report_runs(dirs + [odd], tmp_path / "rep2", figures=False, aggregate=False)
    assert res["aggregate"] == [] and res["thresholds"]["MyEnv-v0"] is None
    with pytest.raises(ValueError, match="one number for several envs"):
        report_runs(dirs, tmp_path / "rep3", figures=False, threshold=3.0)


def test_scores_matched_on_env_steps(tmp_path):
    short = make_run(tmp_path / "short", "a", "CartPole-v1", RAMP, budget=1000)
    long_evals = np.concatenate([RAMP, 100 + RAMP], axis=1)  # 20 windows over 2000 steps: the first 10 = RAMP
    long = make_run(tmp_path / "long", "b", "CartPole-v1", long_evals, budget=2000)
    res = report_runs([short, long], tmp_path / "rep", figures=False)
    cells = {c.label: c for c in res["cells"]}
    # b is scored at 1,000 env steps, where its evaluations equal a's (not at its own 2,000)
    assert cells["b"].final_eval["iqm"] == pytest.approx(cells["a"].final_eval["iqm"]) == pytest.approx(25.0)
    assert cells["b"].auc["iqm"] == pytest.approx(cells["a"].auc["iqm"])
    assert "ran 2,000 env steps; its scores are taken at the matched budget of 1,000" in res["markdown"]


def test_curves_against_grad_steps_and_wall_seconds(tmp_path):
    d = make_run(tmp_path / "r", "a", "CartPole-v1", RAMP)
    for x, top in (("grad_steps", 40.0), ("wall_s", 1.0), ("env_steps", 1000.0)):
        res = report_runs([d], tmp_path / x, x=x, figures=False)
        c = res["curves"]["CartPole-v1"]["a"]
        assert c["eval"]["steps"][-1] == pytest.approx(top)
        assert c["train"]["steps"][-1] == pytest.approx(top)
    with pytest.raises(ValueError, match="must be one of env_steps, grad_steps, wall_s"):
        report_runs([d], tmp_path / "bad", x="seconds")


# ---- bad input: a clear ValueError naming the path and the rule; the CLI exits 2 without a traceback ----


def _bad_inputs(tmp_path):
    good = make_run(tmp_path / "good", "a", "CartPole-v1", RAMP)
    (tmp_path / "empty").mkdir()
    nometrics = make_run(tmp_path / "nometrics", "a", "CartPole-v1", RAMP)
    (nometrics / "metrics.jsonl").unlink()
    blank = make_run(tmp_path / "blank", "a", "CartPole-v1", RAMP)
    (blank / "metrics.jsonl").write_text('{"seed": 0, "env_st')  # torn before the first line ended
    middle = make_run(tmp_path / "middle", "a", "CartPole-v1", RAMP)
    lines = (middle / "metrics.jsonl").read_text().splitlines()
    (middle / "metrics.jsonl").write_text("\n".join(lines[:3] + ["{oops"] + lines[3:]) + "\n")
    return good, [
        ([], "no folders given"),
        ([tmp_path / "nope"], f"{tmp_path / 'nope'}: no such folder"),
        ([tmp_path / "empty"], f"{tmp_path / 'empty'}: not a run folder \\(no summary.json\\)"),
        ([nometrics], f"{nometrics}: not a complete run folder .*no metrics.jsonl"),
        ([blank], f"{blank / 'metrics.jsonl'}: no complete line"),
        ([middle], f"{middle / 'metrics.jsonl'}: line 4 is not a JSON object"),
        ([tmp_path], f"{tmp_path}: not a run folder .*it holds run folders"),
    ]


def test_bad_input_load_runs_and_report(tmp_path):
    pytest.importorskip("pandas")
    _, cases = _bad_inputs(tmp_path)
    for paths, needle in cases:
        with pytest.raises(ValueError, match=needle):
            load_runs(paths)
        with pytest.raises(ValueError, match=needle):
            report_runs(paths, tmp_path / "out", figures=False)


def test_bad_input_cli_exits_2_without_traceback(tmp_path, capsys):
    _, cases = _bad_inputs(tmp_path)
    for paths, needle in cases[1:]:  # (argparse itself refuses an empty list)
        with pytest.raises(SystemExit) as e:
            main(["report", *map(str, paths), "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert e.value.code == 2 and err.startswith("jaxrl-policy: error: ") and "Traceback" not in err
        assert re.search(needle, err), (needle, err)


def test_torn_last_line_is_skipped(tmp_path):
    d = make_run(tmp_path / "r", "a", "CartPole-v1", RAMP)
    whole = (d / "metrics.jsonl").read_text()
    (d / "metrics.jsonl").write_text(whole + '{"seed": 0, "iteration": 11, "env_st')
    rows, torn = read_metrics(d / "metrics.jsonl")
    assert torn and len(rows) == len(whole.splitlines())
    res = report_runs([d], tmp_path / "rep", figures=False)
    assert "skipped a torn last line" in res["markdown"] and str(d / "metrics.jsonl") in res["markdown"]


# ---- load_runs on real runs: a tiny sweep (one compile) and a compare folder -----------------------------


@pytest.fixture(scope="module")
def real_sweep(tmp_path_factory):
    """Two points × two seeds of a tiny PPO (test_sinks runs the same program: one compile per process)."""
    from jaxrl_policy import default_config
    from jaxrl_policy.running.sweep import run_sweep

    out = tmp_path_factory.mktemp("real") / "sw"
    base = default_config("ppo", "CartPole-v1", num_envs=4, num_steps=16, total_timesteps=4 * 16 * 4,
                          num_minibatches=2, num_epochs=2, num_chunks=2, eval_episodes=4)
    run_sweep(base, [{"learning_rate": 1e-4}, {"learning_rate": 3e-3}], 2, out, progress=None,
              checkpoint_every_s=None)
    return out


def test_report_inside_a_compare_folder_is_not_a_run(tmp_path):
    """``report CMP --out CMP/report`` and then ``report CMP`` again: the report's own folder (summary.json,
    report.json, no metrics.jsonl) is output, not a third run; a run folder without metrics.jsonl still fails."""
    cmp_dir = make_compare(tmp_path / "cmp", [("dqn", "CartPole-v1", RAMP), ("ppo", "CartPole-v1", RAMP)])
    for _ in range(2):
        main(["report", str(cmp_dir), "--out", str(cmp_dir / "report")])
        assert [p.name for p in find_run_dirs([cmp_dir])] == ["dqn", "ppo"]
    assert (cmp_dir / "report" / "report.json").exists() and (cmp_dir / "report" / "summary.json").exists()
    (cmp_dir / "ppo" / "metrics.jsonl").unlink()
    with pytest.raises(ValueError, match="ppo: not a complete run folder"):
        find_run_dirs([cmp_dir])


def test_load_runs_columns_and_rows(real_sweep, tmp_path):
    pytest.importorskip("pandas")
    import jaxrl_policy

    cmp_dir = make_compare(tmp_path / "cmp", [("dqn", "CartPole-v1", RAMP), ("ppo", "CartPole-v1", RAMP)])
    assert [p.name for p in find_run_dirs([cmp_dir])] == ["dqn", "ppo"]  # the compare's order, not sorted
    df = jaxrl_policy.load_runs([real_sweep, cmp_dir])
    files = [real_sweep / "p000", real_sweep / "p001", cmp_dir / "dqn", cmp_dir / "ppo"]
    assert len(df) == sum(len((f / "metrics.jsonl").read_text().splitlines()) for f in files)
    assert list(df.columns[:11]) == ["algo", "env", "seed", "run", "hp_learning_rate", "iteration", "env_steps",
                                     "grad_steps", "wall_s", "episode_return", "eval_return"]
    assert {"loss", "ratio_max", "entropy"} <= set(df.columns)  # every other metric column
    assert df.groupby("run").size().to_dict() == {
        str(f): len((f / "metrics.jsonl").read_text().splitlines()) for f in files}
    sw = df[df.run.str.startswith(str(real_sweep))]
    assert sorted(sw.hp_learning_rate.unique()) == [1e-4, 3e-3]
    assert df[df.run == str(cmp_dir / "dqn")].hp_learning_rate.isna().all()
    assert set(sw.seed) == {0, 1} and (sw.algo == "ppo").all() and (df.env == "CartPole-v1").all()
    assert str(df.seed.dtype) == "int64" and str(df.env_steps.dtype) == "int64"
    assert str(df.eval_return.dtype) == "float64" and df.eval_return.notna().any() and df.eval_return.isna().any()
    for _, g in sw.groupby(["run", "seed"]):  # counters only go up
        assert np.all(np.diff(g.env_steps) > 0) and np.all(np.diff(g.grad_steps) >= 0)
    assert len(jaxrl_policy.load_runs(real_sweep / "p000")) == len(df[df.run == str(real_sweep / "p000")])


def test_report_real_sweep_with_a_compare(real_sweep, tmp_path):
    """A sweep next to another folder is expanded to its points, named by their swept values."""
    cmp_dir = make_compare(tmp_path / "cmp", [("dqn", "CartPole-v1", RAMP)])
    res = report_runs([real_sweep, cmp_dir], tmp_path / "rep", figures=False)
    labels = [c.label for c in res["cells"]]
    assert labels == ["ppo learning_rate=0.0001", "ppo learning_rate=0.003", "dqn"]
    assert all(np.isfinite(c.final_eval["iqm"]) for c in res["cells"])


def test_cli_default_out_is_the_folder_that_holds_the_runs(tmp_path, capsys):
    cmp_dir = make_compare(tmp_path / "cmp", [("a", "CartPole-v1", RAMP), ("b", "CartPole-v1", RAMP[::-1])])
    other = make_run(tmp_path / "elsewhere" / "c", "c", "CartPole-v1", RAMP)
    main(["report", str(cmp_dir), "--threshold", "15"])  # regenerates the compare folder's report in place
    assert "# Report: CartPole-v1" in (cmp_dir / "summary.md").read_text()
    assert [r["algo"] for r in json.loads((cmp_dir / "summary.json").read_text())["runs"]] == ["a", "b"]
    assert (cmp_dir / "table.tex").exists()
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:  # runs from two places: it will not guess where the report goes
        main(["report", str(cmp_dir), str(other)])
    assert e.value.code == 2 and "--out DIR" in capsys.readouterr().err

"""experiments/references.py: rows merged into results.json by invocations running side by side are all kept;
the five-task comparison's runs are at one budget and seed count.

The script imports only the standard library at the top, so these tests load it without jax and run in seconds."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "references.py"

WRITER = """
import importlib.util, sys
from pathlib import Path
spec = importlib.util.spec_from_file_location("references", sys.argv[1])
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
res, who, n = Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
header = {"machine": {"who": who}, "date": "2026-12-0" + who, "command": "writer " + who}
for i in range(n):
    with m.locked(res):
        m.merge_row(res, {"key": f"{who}-{i}", "ours": {}}, header, 0.5, {})
"""


def _load():
    spec = importlib.util.spec_from_file_location("references", SCRIPT)
    assert spec is not None and spec.loader is not None
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def test_two_invocations_keep_each_others_rows(tmp_path):
    """Two writers, 40 rows each, at the same time: all 80 rows are in results.json, once each, and wall_s sums
    them (before the lock and the re-read, each invocation rewrote the file from its own copy and dropped the
    other's rows)."""
    res = tmp_path / "results.json"
    res.write_text(json.dumps({"rows": [{"key": "old", "ours": {}}], "date": "2026-12-01T00:00:00"}))
    n = 40
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(SCRIPT), str(res), who, str(n)])
             for who in ("5", "6")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    doc = json.loads(res.read_text())
    keys = [r["key"] for r in doc["rows"]]
    assert sorted(keys) == sorted(["old"] + [f"{w}-{i}" for w in "56" for i in range(n)])
    assert doc["wall_s"] == 0.5 * 2 * n
    assert doc["first_date"] == "2026-12-01T00:00:00"  # the first invocation's date stays
    assert not list(tmp_path.glob("*.tmp"))  # written by rename: no temporary file left behind


def test_merge_row_replaces_its_key_and_keeps_the_table_order(tmp_path):
    m = _load()
    res = tmp_path / "results.json"
    order = {"a": 0, "b": 1, "c": 2}
    header = {"machine": {}, "date": "2026-12-06T05:00:00", "command": "x"}
    for key, v in (("c", 1), ("a", 1), ("c", 2)):
        with m.locked(res):
            doc = m.merge_row(res, {"key": key, "v": v}, header, 1.0, order)
    assert [(r["key"], r["v"]) for r in doc["rows"]] == [("a", 1), ("c", 2)]
    assert doc == json.loads(res.read_text()) and doc["first_date"] == "2026-12-06T05:00:00"


def test_five_task_comparison_is_one_budget_and_seed_count():
    """The five-task comparison takes its own 10⁶ × 5 classic-control runs, not the table's 5·10⁵ × 10 ones, so
    every task has the same budget and seeds (and the same weight in its aggregate); MinAtar uses the table's."""
    m = _load()
    five = m.five_task_rows(m.rows(False))
    assert [(r.env, r.algo) for r in five] == [(e, a) for e in m.FIVE_TASKS for a in m.SPECTRUM]
    assert {(r.steps, r.seeds) for r in five} == {(1_000_000, 5)}
    assert len({r.key for r in m.rows(False)}) == len(m.rows(False))  # every row has its own run folder
    assert all(r.group == "five" for r in five if r.env in m.CLASSIC)

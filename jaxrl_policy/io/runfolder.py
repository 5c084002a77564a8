"""Reading a run folder's files back: ``config.json`` (the one reader), ``metrics.jsonl`` (checked, or
after a crash), ``summary.json``; finding the run folders of run, compare and sweep folders.

A run folder (``running/runner.py`` writes it) holds ``config.json`` (the resolved config, the seeds and
the run metadata), ``metrics.jsonl`` (one line per seed and logged window), ``summary.json`` and
``checkpoints/``; a compare folder holds run folders and a ``summary.json`` with ``"runs"``, a sweep
folder ``sweep.json`` and its points ``p000/ …`` (:data:`FOLDER_RULE`). This module returns plain dicts
and :class:`Run` tuples of them: turning a config dict into a config object needs the algorithm
registry, one floor up (``run/build.read_run_config``), and the statistics of a report are the results
floor's (``results/analysis.py``).
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from jaxrl_policy.io.rundir import atomic_write_text


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file; ValueError naming it where it is not valid JSON (a half-written file)."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}); the file may be half-written") from None


def read_config_json(run_dir: str | os.PathLike) -> dict[str, Any]:
    """``run_dir/config.json`` as a dict; ValueError with the reason alone (callers name the folder): "no such
    folder", "not a run folder (no config.json)", "config.json is not valid JSON (…)"."""
    path = Path(run_dir) / "config.json"
    if not Path(run_dir).is_dir():
        raise ValueError("no such folder")
    if not path.exists():
        raise ValueError("not a run folder (no config.json)")
    try:
        d = json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(f"config.json is not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise ValueError("config.json is not a JSON object")
    return d


def split_run_config(d: dict[str, Any]) -> tuple[dict[str, Any], list[int], dict[str, Any]]:
    """``config.json``'s dict → ``(config fields with "algo", seeds, run metadata)``."""
    d = dict(d)
    seeds = d.pop("seeds", [])
    meta = d.pop("run", {})
    return d, list(seeds), meta


def recorded_cpu_threads(run_dir: str | os.PathLike) -> int | None:
    """The ``--cpu-threads`` a run was started with (its ``config.json``), so a resume reproduces it; None if
    unknown (a missing or broken folder is reported by whoever resumes it)."""
    try:
        n = read_config_json(run_dir).get("run", {}).get("cpu_threads")
    except (OSError, ValueError):
        return None
    return n if isinstance(n, int) and n >= 1 else None


def truncate_metrics(path: Path, iterations_done: int) -> None:
    """Drop log rows written after the checkpoint a run resumes from, and a torn last line (a crash
    inside a write); the file is replaced atomically."""
    if not path.exists():
        return
    keep = []
    for line in path.read_bytes().decode(errors="replace").split("\n")[:-1]:  # [-1]: after the last newline
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a torn line
        if row["iteration"] <= iterations_done:
            keep.append(line)
    atomic_write_text(path, "".join(line + "\n" for line in keep))


# ---- run folders: finding, reading, checking ------------------------------------------------

FOLDER_RULE = (
    "a run folder holds config.json, metrics.jsonl and summary.json; a compare folder holds run folders "
    "and a summary.json with \"runs\"; a sweep folder holds sweep.json and p000/ … run folders"
)


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a ``metrics.jsonl``; a torn last line (a crash mid-write) is skipped.

    Lenient (reading stops at the first line that is not JSON); :func:`read_metrics` is the checked form
    that ``report`` and ``load_runs`` use.
    """
    rows = []
    with open(path) as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return rows


def read_metrics(path: str | os.PathLike) -> tuple[list[dict[str, Any]], bool]:
    """Rows of a ``metrics.jsonl`` and whether a torn last line was skipped.

    The runner writes whole lines, one write per chunk, so a crash can leave at most the last line
    incomplete: that line is skipped. Anything else is refused.

    Raises:
      ValueError: naming the file, if a line other than the last is not a JSON object, or if the
        file has no complete line.
    """
    lines = Path(path).read_text().split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    rows: list[dict[str, Any]] = []
    torn = False
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise json.JSONDecodeError("not a JSON object", line, 0)
        except json.JSONDecodeError as e:
            if i == len(lines) - 1:
                torn = True  # a crash mid-write: the last line is incomplete
                break
            raise ValueError(f"{path}: line {i + 1} is not a JSON object ({e.msg}); only the last line of a "
                             "metrics.jsonl may be incomplete (a crash mid-write)") from None
        rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no complete line (a metrics.jsonl needs at least one whole JSON line per seed "
                         "and logged window; the run may have stopped before its first chunk ended)")
    return rows, torn


def _expand(p: Path) -> list[Path]:
    """The run folders of one given folder (itself, a compare folder's runs or a sweep's points)."""
    if not p.exists():
        raise ValueError(f"{p}: no such folder")
    if not p.is_dir():
        raise ValueError(f"{p}: not a folder ({FOLDER_RULE})")
    if (p / "sweep.json").exists():
        subs = sorted(q.parent for q in p.glob("p[0-9][0-9][0-9]*/summary.json"))
        if not subs:
            raise ValueError(f"{p}: a sweep folder without a finished point (no p*/summary.json)")
        return subs
    if (p / "summary.json").exists():
        doc = read_json(p / "summary.json")
        if isinstance(doc, dict) and "runs" in doc:  # a compare folder: its runs are its sub-folders
            order = [r.get("algo") for r in doc["runs"] if isinstance(r, dict)]
            # a report written inside the compare folder (``report CMP --out CMP/report``) also has a
            # summary.json: its report.json and the absence of metrics.jsonl mark it as output, not a run
            subs = sorted((q.parent for q in p.glob("*/summary.json")
                           if not ((q.parent / "report.json").exists() and not (q.parent / "metrics.jsonl").exists())),
                          key=lambda q: (order.index(q.name) if q.name in order else len(order), q.name))
            if not subs:
                raise ValueError(f"{p}: a compare folder (summary.json with \"runs\") without run folders "
                                 "inside (no */summary.json)")
            return subs
        return [p]
    inside = sorted(q.parent.name for q in p.glob("*/summary.json"))
    hint = f"; it holds run folders ({', '.join(inside[:5])}{' …' if len(inside) > 5 else ''}): pass " \
        "those" if inside else ""
    raise ValueError(f"{p}: not a run folder (no summary.json): {FOLDER_RULE}{hint}")


def find_run_dirs(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """Run folders of ``paths``: run folders as they are, compare and sweep folders expanded to theirs.

    A compare folder (``summary.json`` with ``"runs"``) gives its sub-folders in the order of its runs;
    a sweep folder (``sweep.json``) its finished points ``p000/ …``. Duplicates are dropped.

    Raises:
      ValueError: naming the path and the rule, for an empty list, a path that does not exist, a folder
        that is not a run, compare or sweep folder, or a run folder without ``metrics.jsonl``.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    given = [Path(p) for p in paths]
    if not given:
        raise ValueError(f"no folders given: pass at least one run, compare or sweep folder ({FOLDER_RULE})")
    out: list[Path] = []
    for p in given:
        out += _expand(p)
    seen: set[Path] = set()
    unique = []
    for d in out:
        key = d.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(d)
        if not (d / "metrics.jsonl").exists():
            raise ValueError(f"{d}: not a complete run folder (summary.json but no metrics.jsonl): {FOLDER_RULE}")
    return unique


class Run(NamedTuple):
    """One run folder read back: its path, ``summary.json``, ``metrics.jsonl`` rows (and whether a torn
    last line was skipped)."""

    path: Path
    summary: dict[str, Any]
    rows: list[dict[str, Any]]
    torn: bool


def read_run(d: str | os.PathLike) -> Run:
    """Read one run folder; ValueError naming the folder if it is not a complete one."""
    d = Path(d)
    if not (d / "summary.json").exists():
        raise ValueError(f"{d}: not a run folder (no summary.json): {FOLDER_RULE}")
    if not (d / "metrics.jsonl").exists():
        raise ValueError(f"{d}: not a complete run folder (no metrics.jsonl): {FOLDER_RULE}")
    summary = read_json(d / "summary.json")
    if not isinstance(summary, dict) or "runs" in summary:
        raise ValueError(f"{d}: summary.json of a compare folder, not of a run (pass it to find_run_dirs)")
    missing = [k for k in ("algo", "env") if k not in summary]
    if missing:
        raise ValueError(f"{d / 'summary.json'}: missing {', '.join(missing)} (every run summary names its algo "
                         "and env)")
    rows, torn = read_metrics(d / "metrics.jsonl")
    bad = [k for k in ("seed", "env_steps") if k not in rows[0]]
    if bad:
        raise ValueError(f"{d / 'metrics.jsonl'}: rows have no {', '.join(bad)} (not a metrics.jsonl of a run)")
    return Run(d, summary, rows, torn)


def read_runs(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Run]:
    """Every run folder of ``paths`` (:func:`find_run_dirs`), read (:func:`read_run`)."""
    return [read_run(d) for d in find_run_dirs(paths)]

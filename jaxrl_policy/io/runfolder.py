"""Reading a run folder's files back: ``config.json`` (the one reader), and ``metrics.jsonl`` after a crash.

A run folder (``run/runner.py`` writes it) holds ``config.json`` (the resolved config, the seeds and
the run metadata), ``metrics.jsonl`` (one line per seed and logged window), ``summary.json`` and
``checkpoints/``. This module returns plain dicts: turning a config dict into a config object needs
the algorithm registry, one floor up (``run/build.read_run_config``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

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

"""Metric sinks: TensorBoard and Weights & Biases, fed by the runner once per chunk.

The runner (``runner.run_batch(..., sinks=[...])``) calls ``sink.write(run_name, rows)`` after every
chunk on process 0, with the rows it appends to ``metrics.jsonl`` (one dict per seed and logged
window: ``seed``, ``iteration``, ``env_steps``, ``episode_return``, ``eval_return``, losses,
diagnostics, ``wall_s``), and ``sink.flush()`` once at the end. The jitted loop is untouched: the
data has already left the device, once per chunk, whatever the sinks are.

Both writers are optional extras, imported when a sink is made::

    pip install "jaxrl-policy[tensorboard]"   # tensorboardX, a small pure-Python event writer
    pip install "jaxrl-policy[wandb]"

Every numeric field of a row is logged per seed with step = ``env_steps``; None (a window without
an episode or an evaluation) and non-numeric values are skipped, and so are ``seed`` (it names the
series) and ``env_steps`` (it is the step).
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast

__all__ = ["TensorBoardSink", "WandbSink", "make_sinks", "scalars"]

Mode = Literal["offline", "online", "disabled"]
SKIP = ("seed", "env_steps")  # the series' name and its step, not values


def scalars(row: Mapping[str, Any]) -> dict[str, float]:
    """The loggable values of one metrics row: finite numbers other than ``seed`` and ``env_steps``."""
    out = {}
    for k, v in row.items():
        if k in SKIP or v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if math.isfinite(v):
            out[k] = float(v)
    return out


def _import_error(sink: str, package: str, extra: str) -> ImportError:
    return ImportError(f'{sink} needs {package}, which is not installed; install the extra with: '
                       f'pip install "jaxrl-policy[{extra}]"')


class TensorBoardSink:
    """TensorBoard event files, one writer per run and seed: ``logdir/<run_name>/seed<k>/events.out…``.

    TensorBoard shows each ``<run_name>/seed<k>`` as a run, with one scalar tag per metric
    (``episode_return``, ``eval_return``, ``loss``, …) against env steps. ``flush()`` writes the files
    out and closes the writers (a later ``write`` opens new event files in the same folders, which
    TensorBoard reads together).
    """

    def __init__(self, logdir: str | os.PathLike[str]):
        try:
            from tensorboardX import SummaryWriter
        except ImportError as e:
            raise _import_error("TensorBoardSink", "tensorboardX", "tensorboard") from e
        self._writer_cls = SummaryWriter
        self.logdir = os.fspath(logdir)
        self._writers: dict[tuple[str, int], Any] = {}

    def _writer(self, run_name: str, seed: int) -> Any:
        key = (run_name, seed)
        if key not in self._writers:
            self._writers[key] = self._writer_cls(logdir=os.path.join(self.logdir, run_name, f"seed{seed}"))
        return self._writers[key]

    def write(self, run_name: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Log every numeric field of each row (one per seed and window) at step ``env_steps``."""
        for row in rows:
            w = self._writer(run_name, int(row["seed"]))
            step = int(row["env_steps"])
            for k, v in scalars(row).items():
                w.add_scalar(k, v, global_step=step)

    def flush(self) -> None:
        """Write everything out and close the writers."""
        for w in self._writers.values():
            w.flush()
            w.close()
        self._writers.clear()

    close = flush


class WandbSink:
    """Weights & Biases, one W&B run per ``run_name`` (an algorithm of a compare, a point of a sweep).

    Keys are ``seed<k>/<field>`` (``seed0/episode_return``, ``seed1/eval_return``, …), logged with
    ``step = env_steps``; the rows of all seeds at one env step go in one ``log`` call. The default
    ``mode="offline"`` writes the run under ``dir/wandb/offline-run-…`` without any network access
    (upload later with ``wandb sync``); ``mode="online"`` needs a W&B login. ``config`` (the resolved
    config) is the W&B run config. ``flush()`` finishes the open W&B runs; a later ``write`` to the same
    ``run_name`` starts a new one.
    """

    def __init__(self, project: str, mode: Mode = "offline", dir: str | os.PathLike[str] | None = None,
                 config: Mapping[str, Any] | None = None, group: str | None = None):
        try:
            import wandb
        except ImportError as e:
            raise _import_error("WandbSink", "wandb", "wandb") from e
        if mode not in ("offline", "online", "disabled"):
            raise ValueError(f"WandbSink mode = {mode!r}: must be 'offline', 'online' or 'disabled'")
        self._wandb = wandb
        self.project = project
        self.mode = mode
        self.dir = os.fspath(dir) if dir is not None else None
        self.config = dict(config or {})
        self.group = group
        self._runs: dict[str, Any] = {}

    def _run(self, run_name: str) -> Any:
        if run_name not in self._runs:
            if self.dir is not None:
                os.makedirs(self.dir, exist_ok=True)
            self._runs[run_name] = self._wandb.init(
                project=self.project, name=run_name, group=self.group, config=self.config, mode=self.mode,
                dir=self.dir, reinit="create_new")
        return self._runs[run_name]

    def write(self, run_name: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Log every numeric field of each row as ``seed<k>/<field>`` at step ``env_steps``."""
        by_step: dict[int, dict[str, float]] = {}
        for row in rows:
            d = by_step.setdefault(int(row["env_steps"]), {})
            seed = int(row["seed"])
            d.update({f"seed{seed}/{k}": v for k, v in scalars(row).items()})
        run = self._run(run_name)
        for step in sorted(by_step):
            run.log(by_step[step], step=step)

    def flush(self) -> None:
        """Finish the open W&B runs (writes the offline run folders out)."""
        for run in self._runs.values():
            run.finish()
        self._runs.clear()

    close = flush


def make_sinks(tensorboard: str | os.PathLike[str] | None, wandb_project: str | None,
               config: Mapping[str, Any]) -> list[Any]:
    """The sinks the command-line flags ask for: ``--tensorboard DIR`` and ``--wandb PROJECT``.

    Args:
      tensorboard: log folder for :class:`TensorBoardSink`, or None.
      wandb_project: W&B project for :class:`WandbSink`, or None. Its mode is ``WANDB_MODE`` if set,
        else ``"offline"`` (nothing leaves the machine unless asked); its files go to ``WANDB_DIR`` (else
        the working directory).
      config: the resolved config (``cfg.to_dict()``), stored as the W&B run config; its ``algo`` and
        ``env_id`` name the W&B group.

    Returns:
      A list of sinks for ``run(..., sinks=...)`` / ``run_sweep(..., sinks=...)`` (empty if neither).

    Raises:
      ImportError: naming the extra to install when a sink's package is missing.
    """
    sinks: list[Any] = []
    if tensorboard is not None:
        sinks.append(TensorBoardSink(tensorboard))
    if wandb_project is not None:
        group = "-".join(str(config[k]) for k in ("algo", "env_id") if k in config) or None
        mode = os.environ.get("WANDB_MODE", "offline")
        mode = {"dryrun": "offline", "run": "online"}.get(mode, mode)  # wandb's older spellings
        sinks.append(WandbSink(wandb_project, mode=cast(Mode, mode),
                               dir=os.environ.get("WANDB_DIR"), config=config, group=group))
    return sinks

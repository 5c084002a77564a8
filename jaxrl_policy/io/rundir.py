"""Run folders that never lose data: refusal, one writer, atomic files, room to write.

- **Refusal.** A folder that already holds a run (``config.json``, ``metrics.jsonl``,
  ``summary.json``, ``sweep.json`` or ``checkpoints/``, directly or in a sub-folder) is refused
  with ``RunFolderError`` unless the caller continues it (``resume``) or replaces it
  (``overwrite``: what a run writes is removed first — run files, checkpoints, reports, run
  sub-folders — and nothing else).
- **One writer.** ``LOCK`` in the folder is held with ``flock`` for the whole run and names its
  owner (host, pid, the process's start time, the command). The kernel drops the lock when its
  process dies, so a lock left by a killed run is taken over with a message naming the dead owner;
  a live owner makes the second process fail naming it. Where the filesystem ignores ``flock``, a
  lock naming a live process of this host (same pid and start time) is still refused.
- **Atomic files.** ``atomic_write_text``: a temp file in the same folder, fsynced, then
  ``os.replace``; a reader sees the old file or the new one, never half of one.
- **Room.** ``check_writable`` creates the folder, writes a probe file and checks the free space
  against ``space_needed`` before anything compiles.

Multi-process runs: only process 0 calls these (the runner's writer).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

LOCK = "LOCK"
RUN_FILES = ("config.json", "metrics.jsonl", "summary.json", "sweep.json")
# what --overwrite removes: the run files, checkpoints and what compare/sweep/report write beside them
ARTEFACTS = (*RUN_FILES, "summary.md", "returns.png", "sweep.png", "BATCH", "checkpoints",
             # report_runs' other outputs (a compare or sweep folder's report)
             "report.json", "table.tex", "returns.pdf", "sweep.pdf", "final_scores.png", "final_scores.pdf",
             "poi.png", "poi.pdf", "profiles.png", "profiles.pdf")
MIN_FREE_BYTES = 16 * 2**20  # logs, summaries and reports of a run, with room to spare
METRICS_ROW_BYTES = 1024  # an upper bound of one metrics.jsonl line


class RunFolderError(ValueError):
    """A run folder cannot be used as asked (exists, locked, unwritable, full); the message names it."""


# ---------------------------------------------------------------------------------------------
# atomic files
# ---------------------------------------------------------------------------------------------
def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` so that readers (and a crash) see the old file or the new one."""
    atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers (and a crash) see the old file or the new one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_json(path: str | os.PathLike, obj: Any, **kwargs) -> None:
    atomic_write_text(path, json.dumps(obj, **kwargs))


def append_lines(path: str | os.PathLike, lines: list[str]) -> None:
    """Append whole lines with one ``write`` on an ``O_APPEND`` descriptor (flushed when it returns).

    A crash can leave a torn last line only if the kernel stops inside that write; readers that
    resume (``io/runfolder.truncate_metrics``) drop a torn line.
    """
    data = "".join(line + "\n" for line in lines).encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# what a folder holds
# ---------------------------------------------------------------------------------------------
def run_contents(folder: str | os.PathLike, depth: int = 1) -> list[str]:
    """Run files in ``folder`` and (to ``depth`` levels) its sub-folders, as paths relative to it."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [n for n in (*RUN_FILES, "checkpoints") if (folder / n).exists()]
    if depth > 0:
        for sub in sorted(p for p in folder.iterdir() if p.is_dir() and p.name != "checkpoints"):
            found += [f"{sub.name}/{n}" for n in run_contents(sub, depth - 1)]
    return found


def describe_run(folder: Path) -> str:
    """A few words on what ``folder`` holds (for the refusal message)."""
    if (folder / "sweep.json").exists():
        return "a sweep" + (" (finished)" if (folder / "summary.json").exists() else " (not finished)")
    if (folder / "summary.json").exists():
        return "a finished run"
    if (folder / "config.json").exists():
        return "a run that did not finish"
    return "runs"


def clear_run(folder: Path) -> list[str]:
    """Remove what a run writes in ``folder`` (``ARTEFACTS``, run sub-folders); keep anything else."""
    removed = []
    for name in ARTEFACTS:
        p = folder / name
        if p.is_dir():
            shutil.rmtree(p)
            removed.append(name + "/")
        elif p.exists():
            p.unlink()
            removed.append(name)
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        if run_contents(sub, depth=0):
            removed += [f"{sub.name}/{n}" for n in clear_run(sub)]
            with contextlib.suppress(OSError):
                (sub / LOCK).unlink(missing_ok=True)
                sub.rmdir()  # only if nothing else is left in it
    return removed


# ---------------------------------------------------------------------------------------------
# writability and space
# ---------------------------------------------------------------------------------------------
def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def space_needed(state_bytes: int = 0, checkpoints: bool = True, log_lines: int = 0) -> int:
    """Free bytes a run needs: ``MIN_FREE_BYTES`` + the log + three checkpoints' state (two complete
    ones are kept, and a third is written before the oldest is removed)."""
    return MIN_FREE_BYTES + log_lines * METRICS_ROW_BYTES + (3 * state_bytes if checkpoints else 0)


def check_writable(folder: str | os.PathLike, need_bytes: int = MIN_FREE_BYTES) -> None:
    """Create ``folder`` if needed, write and remove a probe file, and check the free space."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise RunFolderError(f"{folder}: exists and is not a folder") from None
    except OSError as e:
        raise RunFolderError(f"{folder}: cannot create the folder ({e.strerror or e})") from None
    probe = folder / f".write-probe-{os.getpid()}"
    try:
        with open(probe, "w") as f:
            f.write("x")
    except OSError as e:
        raise RunFolderError(f"{folder}: cannot write there ({e.strerror or e})") from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    free = shutil.disk_usage(folder).free
    if free < need_bytes:
        raise RunFolderError(f"{folder}: {fmt_bytes(free)} free, the run needs at least {fmt_bytes(need_bytes)} "
                             f"({fmt_bytes(MIN_FREE_BYTES)} for logs and summaries plus three checkpoints of the "
                             "loop state)")


# ---------------------------------------------------------------------------------------------
# the lock
# ---------------------------------------------------------------------------------------------
def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22): tells a pid
    apart from a later process that reuses it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_info() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "start_time": _start_time(os.getpid()),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": " ".join(sys.argv)}


def describe_owner(o: dict[str, Any]) -> str:
    return f"pid {o.get('pid')} on {o.get('host')} (since {o.get('started', '?')}: {o.get('command', '?')})"


def _owner_alive_here(o: dict[str, Any]) -> bool:
    """Whether ``o`` names a live process of this host (same pid and, where known, start time)."""
    if o.get("host") != socket.gethostname() or not isinstance(o.get("pid"), int):
        return False
    pid = o["pid"]
    if not _alive(pid):
        return False
    return o.get("start_time") is None or o.get("start_time") == _start_time(pid)


@dataclass
class RunLock:
    path: Path
    fd: int
    count: int = 1

    def release(self) -> None:
        self.count -= 1
        if self.count > 0:
            return
        _HELD.pop(str(self.path), None)
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == os.fstat(self.fd).st_ino:
                os.unlink(self.path)  # while still holding the flock: a waiter then finds a new file
        os.close(self.fd)


_HELD: dict[str, RunLock] = {}  # locks this process holds (re-entrant: compare locks its folder and each run's)


def _read_owner(fd: int) -> dict[str, Any] | None:
    data = os.pread(fd, 65536, 0)
    if not data.strip():
        return None
    try:
        o = json.loads(data)
    except ValueError:
        return {"host": "?", "pid": "?", "started": "?", "command": f"unreadable lock file {data[:40]!r}"}
    return o if isinstance(o, dict) else None


def acquire_lock(folder: str | os.PathLike, note: Callable[[str], None] | None = None) -> RunLock:
    """Take ``folder/LOCK`` for this process, or raise ``RunFolderError`` naming its live owner.

    A lock left by a process that is gone is taken over; ``note`` (default: stderr) says so.
    """
    note = note or (lambda msg: print(msg, file=sys.stderr))
    path = Path(folder).absolute() / LOCK
    if str(path) in _HELD:
        _HELD[str(path)].count += 1
        return _HELD[str(path)]
    for _ in range(20):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held by a live process (BlockingIOError), here or on another host
            owner = _read_owner(fd)
            os.close(fd)
            raise RunFolderError(f"{folder} is in use by {describe_owner(owner or {})} (lock file {path}); "
                                 "wait for it to finish or stop it") from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # its owner released and unlinked it between our open and flock: try the new file
            os.close(fd)
            continue
        owner = _read_owner(fd)
        if owner is not None and owner.get("pid") != os.getpid():
            if _owner_alive_here(owner):  # the filesystem ignored flock, but the owner lives
                os.close(fd)
                raise RunFolderError(f"{folder} is in use by {describe_owner(owner)} (lock file {path}); "
                                     "wait for it to finish or stop it")
            gone = "process gone" if owner.get("host") == socket.gethostname() else "lock released"
            note(f"{folder}: taking over the lock of {describe_owner(owner)} ({gone})")
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(owner_info()).encode(), 0)
        os.fsync(fd)
        lock = RunLock(path, fd)
        _HELD[str(path)] = lock
        return lock
    raise RunFolderError(f"{folder}: could not take the lock file {path} (it keeps being replaced)")


# ---------------------------------------------------------------------------------------------
# putting it together
# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def open_run_folder(folder: str | os.PathLike, *, resume: bool = False, overwrite: bool = False,
                    need_bytes: int | Callable[[], int] = MIN_FREE_BYTES, depth: int = 1,
                    note: Callable[[str], None] | None = None) -> Iterator[Path]:
    """Hold ``folder`` for one run: writable, locked, and either new, continued or replaced.

    Without ``resume`` or ``overwrite`` a folder that holds a run (to ``depth`` sub-folder levels)
    raises ``RunFolderError``; ``overwrite`` removes what a run writes first (``clear_run``).
    ``need_bytes`` (or a function computing it, called only once the folder is accepted): the free
    space the run needs.
    """
    if resume and overwrite:
        raise RunFolderError(f"{folder}: resume and overwrite exclude each other")
    folder = Path(folder)
    check_writable(folder, MIN_FREE_BYTES)
    lock = acquire_lock(folder, note)
    try:
        found = run_contents(folder, depth)
        if found and not resume:
            if not overwrite:
                raise RunFolderError(
                    f"{folder} already holds {describe_run(folder)} ({', '.join(found[:4])}"
                    f"{', …' if len(found) > 4 else ''}); pass --resume to continue it or --overwrite to replace it "
                    "(Python: resume=True / overwrite=True)")
            clear_run(folder)
        check_writable(folder, need_bytes() if callable(need_bytes) else need_bytes)
        yield folder
    finally:
        lock.release()


# ---------------------------------------------------------------------------------------------
# a testing hook: pause at a named place so a test can kill the process there
# ---------------------------------------------------------------------------------------------
FAULT_ENV = "JAXRL_POLICY_FAULT"


def fault_pause(where: str, chunk: int) -> None:
    """For crash tests only: with ``JAXRL_POLICY_FAULT=WHERE:CHUNK:SECONDS`` (comma-separated for
    several), print ``JAXRL_POLICY_FAULT WHERE CHUNK`` to stderr and sleep there.

    ``chunk``: while chunk CHUNK (1-based) is computing (dispatched, not yet fetched);
    ``checkpoint``: inside ``checkpoint.save`` of CHUNK after orbax started writing, before the
    checkpoint is complete. Unset (always, outside tests), it costs one environment look-up.
    """
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    for part in spec.split(","):
        w, c, s = part.split(":")
        if w == where and int(c) == chunk:
            print(f"{FAULT_ENV} {where} {chunk}", file=sys.stderr, flush=True)
            time.sleep(float(s))

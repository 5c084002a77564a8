"""Run metadata: what produced a number (package, libraries, git state, machine, devices, command).

One place for it: ``config.json`` of every run folder and every benchmark JSON use
``run_metadata``. ``config_hash`` identifies a resolved config independent of key order.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import jax

from jaxrl_policy._version import __version__
from jaxrl_policy._xla_flags import cpu_threads

LIBRARIES = ("jax", "jaxlib", "flax", "optax", "chex", "gymnax", "orbax-checkpoint", "numpy")


def _version(dist: str) -> str | None:
    try:
        return importlib_metadata.version(dist)
    except importlib_metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo where there is one, else what platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_state(path: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the checkout the package runs from, or None outside a git checkout."""
    root = Path(path) if path is not None else Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


def config_hash(config_dict: dict[str, Any]) -> str:
    """sha256 (first 16 hex digits) of the resolved config, keys sorted: equal configs, equal hash."""
    return hashlib.sha256(json.dumps(config_dict, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_metadata(command: list[str] | None = None) -> dict[str, Any]:
    """Package and library versions, git state, machine, devices, XLA settings and the command line.

    Starts JAX's backend (it asks for the devices).
    """
    dev = jax.devices()
    argv = sys.argv if command is None else command
    return {
        "package_version": __version__,
        "git": git_state(),
        **{f"{name.replace('-', '_')}_version": _version(name) for name in LIBRARIES},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "backend": jax.default_backend(),
        "device_kind": dev[0].device_kind,
        "device_count": len(dev),
        "process_count": jax.process_count(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "cpu_threads": cpu_threads(),  # PJRT_NPROC; None = XLA's default (all cores); part of bit-identity
        # None = the backend's default (on NVIDIA GPUs, TF32 for float32 matrix products)
        "matmul_precision": str(getattr(jax.config, "jax_default_matmul_precision", None)),
        "command": " ".join(["jaxrl-policy", *argv[1:]]) if argv and Path(argv[0]).name == "jaxrl-policy"
        else " ".join(argv),
    }

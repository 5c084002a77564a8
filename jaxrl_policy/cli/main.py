"""``jaxrl-policy``: train | compare | sweep | bench | report | distill | collect | export.

``train`` and ``compare`` take run-level flags (``--algo``/``--algos``, ``--env``, ``--seeds``,
``--out``); every config field of the chosen algorithm is a flag too, parsed by tyro from the
algorithm's dataclass with the env's defaults (``jaxrl-policy train --algo dqn --help`` lists
them). ``compare`` and ``bench`` take the fields that all their algorithms share and apply them
to each (``shared_configs``). Bad values exit with code 2 and one message naming every bad
field, before compiling.

``--plugin FILE.py`` (or a module name; repeatable, any command) imports code that registers its
own algorithms (``jaxrl_policy.register_algorithm``; ``experiments/a2c.py`` is one).

Exit codes: 0 done; 2 bad input or an unusable run folder (exists without --resume/--overwrite,
locked by a live process, unwritable, full, a --resume whose flags differ from the run's own),
before compiling; 3 a run diverged (``run/divergence.DivergenceGuard``: the other runs' results are
written, ``summary.json`` says which seeds diverged, where and why).

Compiled programs are cached on disk (``running/programs.py``): a second identical command loads them
instead of compiling. The folder is ``JAXRL_POLICY_CACHE`` (default ``~/.cache/jaxrl_policy``);
``JAXRL_POLICY_CACHE=off`` or ``--no-compile-cache`` (any command) turns it off.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

from jaxrl_policy._xla_flags import use_cpu_speedups
from jaxrl_policy.cli.bench import cmd_bench
from jaxrl_policy.cli.common import fail
from jaxrl_policy.cli.compare import cmd_compare
from jaxrl_policy.cli.distill import cmd_collect, cmd_distill
from jaxrl_policy.cli.export import cmd_export
from jaxrl_policy.cli.report import cmd_report
from jaxrl_policy.cli.sweep import cmd_sweep
from jaxrl_policy.cli.train import cmd_train
from jaxrl_policy.running.programs import set_cache_dir

COMMANDS = {"train": cmd_train, "compare": cmd_compare, "sweep": cmd_sweep, "bench": cmd_bench, "report": cmd_report,
            "distill": cmd_distill, "collect": cmd_collect, "export": cmd_export}


def load_plugins(argv: list[str]) -> list[str]:
    """Import every ``--plugin FILE.py|module`` of ``argv`` (which registers algorithms); return the rest."""
    rest, i = [], 0
    while i < len(argv):
        x = argv[i]
        if x == "--plugin" or x.startswith("--plugin="):
            target = x.split("=", 1)[1] if "=" in x else (argv[i + 1] if i + 1 < len(argv) else "")
            i += 1 if "=" in x else 2
            if not target:
                fail("--plugin: give a .py file or a module name")
            try:
                if target.endswith(".py"):
                    path = Path(target)
                    if not path.is_file():
                        fail(f"--plugin = {target!r}: no such file")
                    spec = importlib.util.spec_from_file_location(f"jaxrl_plugin_{path.stem}", path)
                    assert spec is not None and spec.loader is not None
                    module = importlib.util.module_from_spec(spec)
                    sys.modules[spec.name] = module
                    spec.loader.exec_module(module)
                else:
                    importlib.import_module(target)
            except SystemExit:
                raise
            except Exception as e:  # the plugin's own error, named as such
                fail(f"--plugin = {target!r} failed to import: {type(e).__name__}: {e}")
            continue
        rest.append(x)
        i += 1
    return rest


def compile_cache(argv: list[str]) -> list[str]:
    """Cache compiled programs (``running/programs.py``) unless ``--no-compile-cache`` is in ``argv`` or
    ``JAXRL_POLICY_CACHE`` is ``off``; the folder is ``JAXRL_POLICY_CACHE``, default
    ``$XDG_CACHE_HOME/jaxrl_policy`` (``~/.cache/jaxrl_policy``). Returns ``argv`` without the flag."""
    rest = [x for x in argv if x != "--no-compile-cache"]
    folder = os.environ.get("JAXRL_POLICY_CACHE")
    if folder is None:
        folder = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jaxrl_policy")
    if len(rest) == len(argv) and folder.strip().lower() not in ("", "off", "0", "none", "false"):
        try:
            set_cache_dir(folder)
        except OSError as e:  # an unwritable cache folder: say so and go on without one
            print(f"note: not caching compiled programs ({folder}: {e.strerror})", file=sys.stderr)
    return rest


def main(argv: list[str] | None = None) -> None:
    argv = load_plugins(list(sys.argv[1:] if argv is None else argv))
    argv = compile_cache(argv)
    use_cpu_speedups()  # our own program: opt in to the process-wide CPU speed-ups (_xla_flags)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        print("\nusage: jaxrl-policy {train,compare,sweep,bench,report,distill,collect,export} [flags]  (each: --help)")
        raise SystemExit(0 if argv else 2)
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        fail(f"unknown command {cmd!r}; choose from {', '.join(COMMANDS)}")
    COMMANDS[cmd](rest)


if __name__ == "__main__":
    main()

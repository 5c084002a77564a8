"""The package's floors: every import points down, no cycles, function-local imports only for heavy extras.

The graph is built with ``ast`` from the source (every ``import`` and ``from … import`` of a
``jaxrl_policy`` module, at module level or inside a function), so an import hidden in a function
counts. ``docs/architecture.md`` draws the same floors.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "jaxrl_policy"

# floor of each top-level part of the package: an import may only point to a floor at or below its own
# (within a floor, the graph must still be acyclic)
FLOORS = {
    "_version": 0, "_xla_flags": 0,
    "core": 1,
    "io": 2,
    "algorithms": 3,
    "loop": 4, "results": 4,
    "running": 5,
    "cli": 6,
    "__init__": 7,
}
# function-local imports are allowed only for these: optional or heavy dependencies that a plain
# `import jaxrl_policy` must not pay for (orbax: only runs that checkpoint; jax.experimental's multihost
# utilities: only several processes), modules that start JAX's backend when imported (gymnax builds
# arrays, and so do the probe envs that subclass it: backend settings must come first), and JAX's private
# xla_bridge, asked whether the backend started without importing jax (_xla_flags), and the optional env
# suites (extras: craftax, xminigrid, navix, jumanji; imported only when one of their ids is used, seconds each)
LAZY_OK = {"matplotlib", "pandas", "brax", "wandb", "tensorboardX", "orbax", "gymnax", "jax.experimental",
           "jaxrl_policy.core.envs.probes", "jax._src", "craftax", "xminigrid", "navix", "jumanji"}


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path) -> list[tuple[str, bool, int]]:
    """``(imported module, inside a function, line)`` for every import of ``path``."""
    tree = ast.parse(path.read_text())
    out = []

    def visit(node: ast.AST, local: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                out.extend((a.name, local, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                if child.module == "jaxrl_policy" or child.module.startswith("jaxrl_policy."):
                    # `from jaxrl_policy.x import y` may import the submodule x.y
                    for a in child.names:
                        sub = f"{child.module}.{a.name}"
                        out.append((sub if module_of(sub) else child.module, local, child.lineno))
                else:
                    out.append((child.module, local, child.lineno))
            visit(child, inner)

    visit(tree, False)
    return out


def module_of(name: str) -> Path | None:
    base = PKG.parent / Path(*name.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.exists():
            return p
    return None


def graph() -> dict[str, set[str]]:
    g: dict[str, set[str]] = {}
    for path in PKG.rglob("*.py"):
        name = module_name(path)
        g[name] = set()
        for imp, _, _ in imports(path):
            if imp.startswith("jaxrl_policy") and module_of(imp):
                g[name].add(imp)
    return g


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module, or a self-import (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in g.get(v, ()):
                found.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            strong(v)
    return found


def floor(name: str) -> int:
    parts = name.split(".")
    return FLOORS["__init__"] if len(parts) == 1 else FLOORS[parts[1]]


def test_the_import_graph_has_no_cycle():
    assert cycles(graph()) == []


def test_every_import_points_down():
    up = [f"{a} (floor {floor(a)}) imports {b} (floor {floor(b)})"
          for a, deps in graph().items() for b in deps if floor(b) > floor(a)]
    assert up == []


def test_function_local_imports_only_for_heavy_optional_dependencies():
    bad = []
    for path in PKG.rglob("*.py"):
        for imp, local, line in imports(path):
            if local and not any(imp == ok or imp.startswith(ok + ".") for ok in LAZY_OK):
                bad.append(f"{path.relative_to(PKG.parent)}:{line}: import {imp}")
    assert bad == []


def test_the_checks_fail_on_a_planted_cycle_and_an_upward_import():
    g = graph()
    assert cycles(g) == []
    planted = {k: set(v) for k, v in g.items()}
    planted["jaxrl_policy.core.types"].add("jaxrl_policy.running.build")  # types → build → … → types
    found = cycles(planted)
    assert found and any("jaxrl_policy.core.types" in c and "jaxrl_policy.running.build" in c for c in found)
    assert floor("jaxrl_policy.running.build") > floor("jaxrl_policy.core.types")


@pytest.mark.parametrize("name", ["jaxrl_policy.core.types", "jaxrl_policy.core.losses", "jaxrl_policy.io.rundir"])
def test_low_floors_import_nothing_above_them(name):
    """What a low-floor module pulls in, transitively, stays on its floor or below."""
    g = graph()
    seen, todo = set(), [name]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += g.get(m, ())
    assert all(floor(m) <= floor(name) for m in seen), sorted(m for m in seen if floor(m) > floor(name))


def test_the_public_run_function_is_not_shadowed_by_a_subpackage():
    """``jaxrl_policy.run`` is a function; a subpackage of that name would replace it once imported."""
    import jaxrl_policy
    import jaxrl_policy.running.runner  # noqa: F401

    assert callable(jaxrl_policy.run) and jaxrl_policy.run.__module__ == "jaxrl_policy.running.runner"
    assert not (PKG / "run").exists() and not (PKG / "run.py").exists()

"""The layers (issue 20): pyproject.toml's import-linter contracts hold on the real tree, a forbidden
import put into a scratch copy breaks the contract that forbids it, and there is no import cycle
between any two modules of gongmo or of the bench.

lint-imports and grimp read folders; `.ci/gongmo_tree.py` lays the package out as installed
(gongmo/workflow/... for the repository's workflow/...) in tmp_path, once a test."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"


def _gongmo_tree() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gongmo_tree", ROOT / ".ci" / "gongmo_tree.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TREE = _gongmo_tree()


def contract(type_: str, source: str | None = None) -> str:
    """A contract's name, found by its type (and first source module) in pyproject.toml."""
    contracts = tomllib.loads(PYPROJECT.read_text("utf-8"))["tool"]["importlinter"]["contracts"]
    for c in contracts:
        if c["type"] == type_ and (source is None or c.get("source_modules", [None])[0] == source):
            return str(c["name"])
    raise AssertionError(f"no {type_} contract for {source} in pyproject.toml")


def lint(tree: Path, config: Path = PYPROJECT) -> subprocess.CompletedProcess[str]:
    return TREE.lint(["--no-cache"], tree, config, capture=True)  # type: ignore[no-any-return]


def test_the_contracts_hold_on_the_real_tree(tmp_path: Path) -> None:
    tree = TREE.build(tmp_path / "tree")
    done = lint(tree)
    assert done.returncode == 0, done.stdout + done.stderr
    assert " 0 broken." in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "which", "arrow"),
    [
        (
            "workflow/core/clock.py",
            "from gongmo.workflow.cli import app",
            ("layers", None),
            "gongmo.workflow.core.clock -> gongmo.workflow.cli",
        ),
        (
            "states/text.py",
            "import gongmo.workflow.core.clock",
            ("forbidden", "gongmo.states"),
            "gongmo.states.text -> gongmo.workflow.core.clock",
        ),
        (
            "notifications/render.py",
            "from gongmo.workflow.runtime import metrics",
            ("forbidden", "gongmo.notifications"),
            "gongmo.notifications.render -> gongmo.workflow.runtime.metrics",
        ),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, module: str, line: str, which: tuple[str, str | None], arrow: str
) -> None:
    """A scratch copy (files, not links: the repository is not touched) and a scratch config."""
    config = tmp_path / "pyproject.toml"
    config.write_text(PYPROJECT.read_text("utf-8"), "utf-8")
    tree = TREE.build(tmp_path / "tree", copy=True)
    top, _, rest = module.partition("/")
    path = tree / "gongmo" / top / rest
    path.write_text(path.read_text("utf-8") + f"\n{line}  # noqa: E402\n", "utf-8")
    done = lint(tree, config)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{contract(*which)} BROKEN" in done.stdout
    assert re.search(rf"-\s+{re.escape(arrow)} \(l\.\d+\)", done.stdout), done.stdout


# Every module of gongmo (as installed) and of the bench, and what each imports of them (grimp,
# type-checking imports included); run in its own interpreter, with the tree ahead of the repository.
GRAPH = """
import json, sys
import grimp
graph = grimp.build_graph("gongmo", "bench", cache_dir=None)
print(json.dumps({m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}))
"""


def cycles(edges: dict[str, list[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(edges.get(root, [])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges.get(child, []))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycles_finds_a_loop_and_nothing_else() -> None:
    assert cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]
    assert cycles({"a": ["b"], "b": []}) == []


def test_no_module_imports_itself_round_a_loop(tmp_path: Path) -> None:
    tree = TREE.build(tmp_path / "tree")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-c", GRAPH], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    edges = json.loads(done.stdout)
    assert any(m.startswith("gongmo.workflow.") for m in edges) and "bench.db" in edges
    assert cycles(edges) == []

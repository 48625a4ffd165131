"""The `gongmo` package as the import system sees it, laid out as folders for the tools that read folders.

pyproject.toml maps the repository's top folders under one package with setuptools package-dir
(`gongmo.workflow` is `workflow/`, ...). An installed wheel has that layout; the editable install
reaches it through an import hook, which grimp (import-linter) and mypy do not run: they name a
module by its folder. This script writes build/gongmo-tree/gongmo/... as real folders holding
symlinks to the real .py files, so `gongmo.workflow.core.db` is gongmo/workflow/core/db.py there.

    python .ci/gongmo_tree.py              # (re)build the tree, print its path
    python .ci/gongmo_tree.py lint [ARGS]  # lint-imports on the tree, with pyproject.toml's contracts
    python .ci/gongmo_tree.py mypy [ARGS]  # mypy on the tree; its paths printed as the repository's

The tree is rebuilt from scratch each time (build/ is git-ignored), so a moved or deleted module
leaves no stale link behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREE = ROOT / "build" / "gongmo-tree"
SOURCES = (".py", ".pyi", "py.typed")


def package_dirs(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, Path]:
    """pyproject's package-dir, for the mapped folders that are Python packages (an __init__.py).
    `gongmo.defaults` ("." : package data only) has none and is left out."""
    mapping = tomllib.loads(pyproject.read_text("utf-8"))["tool"]["setuptools"]["package-dir"]
    dirs = {name: (pyproject.parent / folder).resolve() for name, folder in mapping.items()}
    return {name: path for name, path in dirs.items() if (path / "__init__.py").is_file()}


def build(tree: Path = TREE, pyproject: Path = ROOT / "pyproject.toml", copy: bool = False) -> Path:
    """Write the tree and return the folder to put on the path (it holds `gongmo/`).
    copy: the files themselves instead of links (a scratch copy a test may edit)."""
    if tree.exists():
        shutil.rmtree(tree)
    for name, source in sorted(package_dirs(pyproject).items()):
        _mirror(source, tree.joinpath(*name.split(".")), copy)
    return tree


def _mirror(source: Path, target: Path, copy: bool) -> None:
    """Folders as folders (grimp and mypy walk them), source files as links to the real ones.
    A sub-folder without __init__.py is not a package and not mirrored; nor one mapped on its own."""
    target.mkdir(parents=True, exist_ok=True)
    for entry in sorted(source.iterdir()):
        if entry.is_dir() and (entry / "__init__.py").is_file() and not (target / entry.name).exists():
            _mirror(entry, target / entry.name, copy)
        elif entry.is_file() and entry.name.endswith(SOURCES):
            if copy:
                shutil.copyfile(entry, target / entry.name)
            else:
                (target / entry.name).symlink_to(entry)


def lint(
    args: list[str], tree: Path = TREE, config: Path = ROOT / "pyproject.toml", capture: bool = False
) -> subprocess.CompletedProcess[str]:
    """lint-imports puts its working folder first on sys.path: run it inside the tree, where
    `gongmo` is the mirrored package (in the repository it would be the bare gongmo/ folder).
    Its report is not wrapped (a contract's name stays on one line, next to KEPT or BROKEN)."""
    command = [_tool("lint-imports"), str(config), *args]
    env = {**os.environ, "PYTHONPATH": str(tree), "COLUMNS": "200"}
    return subprocess.run(command, cwd=tree, env=env, capture_output=capture, text=True, check=False)


def mypy(args: list[str], tree: Path = TREE) -> int:
    """mypy on the tree, from the repository (pyproject's [tool.mypy] names the tree), its
    report with each mirrored path turned back into the repository's own."""
    links = {str(link.relative_to(ROOT)): str(link.resolve().relative_to(ROOT)) for link in tree.rglob("*.py")}
    done = subprocess.run([_tool("mypy"), *args], cwd=ROOT, capture_output=True, text=True, check=False)
    for stream, text in ((sys.stdout, done.stdout), (sys.stderr, done.stderr)):
        for line in text.splitlines(keepends=True):
            path, sep, rest = line.partition(":")
            stream.write(links.get(path, path) + sep + rest)
    return done.returncode


def _tool(name: str) -> str:
    """The tool next to this interpreter (the project's venv), else the one on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


def main(argv: list[str]) -> int:
    tree = build()
    if not argv:
        print(tree)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "lint":
        return lint(rest, tree).returncode
    if command == "mypy":
        return mypy(rest, tree)
    print(f"unknown command {command!r}: lint or mypy (or none, to build the tree)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

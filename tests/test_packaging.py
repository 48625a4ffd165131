"""The build: one `gongmo` import package mapped from the repository's folders, and a wheel
that carries its starting config and templates (pyproject.toml's [tool.setuptools])."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import gongmo
from gongmo.workflow.core import starter

ROOT = Path(__file__).resolve().parents[1]
MAPPED = {"states": "gongmo.states", "notifications": "gongmo.notifications", "workflow": "gongmo.workflow"}


def setuptools_table() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        table: dict[str, object] = tomllib.load(f)["tool"]["setuptools"]
    return table


def packages_on_disk() -> set[str]:
    """Every folder under the mapped ones that holds an __init__.py, as its import name."""
    found = {"gongmo"} if (ROOT / "gongmo" / "__init__.py").is_file() else set()
    for folder, name in MAPPED.items():
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            relative = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *relative.parts]))
    return found


def test_every_package_folder_is_listed_and_no_listed_one_is_stale() -> None:
    listed = set(setuptools_table()["packages"])  # type: ignore[call-overload]
    listed.discard("gongmo.defaults")  # package data only (the repository's top), no __init__.py
    on_disk = packages_on_disk()
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - on_disk == set(), "these are listed in pyproject.toml but have no __init__.py"


def test_the_folders_are_mapped_under_gongmo() -> None:
    package_dir = setuptools_table()["package-dir"]
    assert package_dir == {"gongmo": "gongmo", "gongmo.defaults": ".", **{v: k for k, v in MAPPED.items()}}


def test_package_data_names_what_defaults_dir_holds() -> None:
    data = setuptools_table()["package-data"]["gongmo.defaults"]  # type: ignore[index]
    assert "config.toml" in data and "templates/*/*.txt" in data and "templates/*/*.html" in data
    assert "examples/*.csv" in data


def test_defaults_dir_holds_the_starting_config_and_the_templates() -> None:
    defaults = gongmo.defaults_dir()
    assert (defaults / "config.toml").is_file()
    assert (defaults / "templates" / "ko").is_dir()
    assert (defaults / "templates" / "en").is_dir()
    assert (defaults / "examples" / "applicants.csv").is_file()


def test_the_starting_config_is_written_once_with_a_note_and_loads(tmp_path: Path) -> None:
    from gongmo.workflow.core import config as config_mod

    path = tmp_path / "config.toml"
    assert starter.write_if_missing(path) == path
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# This config.toml was written by `gongmo init`, because this folder had none.")
    assert text.endswith((gongmo.defaults_dir() / "config.toml").read_text(encoding="utf-8"))

    path.write_text(text + "\n# the office's edit\n", encoding="utf-8")
    assert starter.write_if_missing(path) is None
    assert path.read_text(encoding="utf-8").endswith("# the office's edit\n")

    loaded = config_mod.load(path)
    assert loaded.templates_dir == tmp_path / "templates"
    assert loaded.database_url == f"sqlite:///{tmp_path / 'var' / 'gongmo.db'}"
    assert loaded.config.mail.maildir == "var/maildir"


def test_the_wheel_holds_one_top_level_package_and_its_defaults(tmp_path: Path) -> None:
    """Built from a copy of the sources (a stale build/ of the checkout cannot leak in); about 10 s."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "config.toml"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("gongmo", "states", "notifications", "workflow", "templates", "examples"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(source), "-w", str(out)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("gongmo-*.whl")
    names = zipfile.ZipFile(wheel).namelist()

    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"gongmo"}, "only gongmo/ at the wheel's top: workflow, states, notifications are mapped under it"
    assert "gongmo/defaults/config.toml" in names
    assert "gongmo/defaults/examples/applicants.csv" in names
    for language in ("ko", "en"):
        for notice in ("selected.txt", "selected.html"):
            assert f"gongmo/defaults/templates/{language}/{notice}" in names
    assert "gongmo/workflow/core/migrations/script.py.mako" in names
    assert "gongmo/__main__.py" in names
    assert not [n for n in names if n.startswith("gongmo/defaults/") and n.endswith(".py")], "no code in defaults"
    packaged = {"/".join(n.split("/")[:-1]).replace("/", ".") for n in names if n.endswith("/__init__.py")}
    assert packaged == packages_on_disk()


def test_only_the_default_config_of_the_folder_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert starter.write_default_if_missing(tmp_path / "elsewhere.toml") is None
    assert starter.write_default_if_missing(Path("other.toml")) is None
    assert list(tmp_path.iterdir()) == []
    assert starter.write_default_if_missing(Path("config.toml")) == Path("config.toml")
    assert (tmp_path / "config.toml").read_text(encoding="utf-8") == starter.starting_config()
    assert starter.write_default_if_missing(Path("config.toml")) is None
    assert starter.written_note(Path("config.toml")).startswith("config.toml: written, as this folder had no config")

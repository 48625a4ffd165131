"""The starting config.toml: what `gongmo init` writes into a folder that has none.

It is gongmo's packaged config (the two reference contests) with a note at its top.
Its relative paths are relative to the file, so they work in any folder: the
database var/gongmo.db, the Maildir var/maildir and templates_dir "templates".
The templates are not copied: a file the folder's templates/LANG/ holds overrides
the packaged one of that name, and the packaged ones fill in the rest.
"""

from __future__ import annotations

from pathlib import Path

from gongmo import defaults_dir

DEFAULT_CONFIG = Path("config.toml")  # the CLI's --config when none is given

HEADER = """\
# This config.toml was written by `gongmo init`, because this folder had none.
# It is gongmo's starting config: the two reference contests below. To run your
# own, edit this file (the comments below describe each key; gongmo's README
# explains the contests in "The reference contests (config.toml)"), then run
# `gongmo init` again to apply the change to the database. The notice
# templates are gongmo's packaged ones; to change one, put your own file at
# templates/LANG/NOTICE.txt or .html beside this file, and `gongmo templates
# check` says which file each notice uses.
#
"""


def starting_config() -> str:
    """The text `gongmo init` writes: the note above the packaged config.toml."""
    return HEADER + (defaults_dir() / "config.toml").read_text(encoding="utf-8")


def write_if_missing(path: Path) -> Path | None:
    """Write the starting config to `path` unless a file is there; the path written, or None
    when one existed (it is never touched). The folder is created if missing."""
    if path.exists():
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("x", encoding="utf-8") as out:  # never over a file made meanwhile
            out.write(starting_config())
    except FileExistsError:
        return None
    return path


def write_default_if_missing(config: Path) -> Path | None:
    """`gongmo init`'s step: write the starting config when `config` is the default config.toml of
    the current folder and it is missing. A --config (or GONGMO_CONFIG) naming a missing file stays
    the error it was: a mistyped path must not start a new set of contests."""
    if config != DEFAULT_CONFIG:
        return None
    return write_if_missing(config)


def written_note(path: Path) -> str:
    """What `gongmo init` says after writing the starting config."""
    return f"{path}: written, as this folder had no config (gongmo's starting one); edit it, then `gongmo init` again"

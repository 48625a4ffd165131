"""gongmo (공모): run public funding contests end to end.

The repository keeps the folders `states/`, `notifications/` and `workflow/` at its top; the build maps them
under this one package (`gongmo.states`, `gongmo.notifications`, `gongmo.workflow`; see pyproject.toml).
"""

from pathlib import Path


def defaults_dir() -> Path:
    """Where the starting config.toml and the default templates/ are: the package's
    `defaults/` in an installed wheel, the repository's top in a checkout."""
    here = Path(__file__).resolve().parent
    packaged = here / "defaults"
    return packaged if packaged.is_dir() else here.parent

"""A plan's documents on the command line, for the CLI tests that receive a plan.

A plan is received only with every required document (issue 21), so a test whose
`gongmo apply` must succeed passes `--document plan=FILE --document budget=FILE`:

    docs = document_args(tmp_path)          # the two sample files, written once per folder
    gongmo("apply", TRACK, "41590", "--national", N, "--local", N, *docs, now=OPEN)

A refusal the intake makes before it looks at the documents (an amount, a type, the
window) needs none, and its tests pass none: nothing is uploaded.
"""

from __future__ import annotations

from pathlib import Path

from gongmo.workflow.core import samples

# kind -> (file name, bytes): a type the shipped config accepts for each required kind.
SAMPLES = {
    "plan": ("사업계획서.pdf", samples.pdf),
    "budget": ("사업비_산출내역서.xlsx", samples.xlsx),
}


def sample_files(folder: Path) -> dict[str, Path]:
    """The sample plan (PDF) and budget sheet (XLSX) in `folder`/documents, written if missing."""
    where = folder / "documents"
    where.mkdir(parents=True, exist_ok=True)
    files = {}
    for kind, (name, make) in SAMPLES.items():
        path = where / name
        if not path.is_file():
            path.write_bytes(make())
        files[kind] = path
    return files


def document_args(folder: Path) -> tuple[str, ...]:
    """('--document', 'plan=…/사업계획서.pdf', '--document', 'budget=…/사업비_산출내역서.xlsx')."""
    args: list[str] = []
    for kind, path in sample_files(folder).items():
        args += ["--document", f"{kind}={path}"]
    return tuple(args)

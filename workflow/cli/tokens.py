"""`gongmo tokens`: the HTTP API's tokens (create, list, revoke)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from gongmo.workflow.cli import output
from gongmo.workflow.cli.shared import ChangedJson, app, bounded, state

tokens_app = typer.Typer(help="API tokens for the HTTP API (served by `gongmo daemon`).", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")


@tokens_app.command("create")
def tokens_create(
    role: Annotated[str, typer.Option("--role", help="admin, evaluator or applicant.")],
    subject: Annotated[
        str, typer.Option("--subject", help="admin: the person; evaluator: the e-mail; applicant: the code.")
    ],
    note: Annotated[str | None, typer.Option("--note", help="What the token is for.")] = None,
    actor: Annotated[str, typer.Option("--actor", help="Who creates it.")] = "admin",
    as_json: ChangedJson = False,
) -> None:
    """Create a token; it is printed once and only its SHA-256 is kept."""
    from gongmo.workflow.core import tokens

    a = state.app()
    token_id, token = tokens.create(a, role, subject, actor, note)
    if as_json:  # the token is in it: shown once
        output.print_json({"id": token_id, "token": token, "role": role, "subject": subject.strip(), "note": note})
        return
    output.console.print(f"token {token_id} ({role}, {subject.strip()}): shown once, keep it now:", markup=False)
    sys.stdout.write(token + "\n")


@tokens_app.command("list")
def tokens_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every token (never the token itself): role, subject, created, last used, revoked."""
    from gongmo.workflow.core import tokens

    rows = tokens.listing(state.app())
    if as_json:
        output.print_json(rows)
        return
    output.print_rows(
        "API tokens (KST)",
        ["id", "prefix", "role", "subject", "created", "last used", "revoked", "note"],
        [
            [
                str(r["id"]),
                r["prefix"] + "...",
                r["role"],
                r["subject"],
                output.kst(r["created_at"]),
                output.kst(r["last_used_at"]),
                output.kst(r["revoked_at"]),
                r["note"] or "",
            ]
            for r in rows
        ],
    )


@tokens_app.command("revoke")
def tokens_revoke(token_id: int, as_json: ChangedJson = False) -> None:
    """Revoke a token at once: its next request gets 401."""
    from gongmo.workflow.core import tokens

    bounded(token_id, "TOKEN_ID")
    row = tokens.revoke(state.app(), token_id)
    output.done(
        as_json,
        {
            "id": token_id,
            "role": row["role"],
            "subject": row["subject"],
            "revoked": True,
            "revoked_at": row["revoked_at"],
        },
        f"token {token_id} ({row['role']}, {row['subject']}) revoked",
    )

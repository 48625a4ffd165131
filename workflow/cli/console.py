"""`gongmo staff` (the office's accounts for the web console) and `gongmo console` (a first sign-in
link, the live sessions, revoking them). The services are core/sessions, as the pages use them."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from gongmo.states.errors import InvalidInput
from gongmo.workflow.cli import output
from gongmo.workflow.cli.shared import ChangedJson, app, bounded, state
from gongmo.workflow.core import sessions
from gongmo.workflow.core.db import read

staff_app = typer.Typer(help="Office staff accounts: who may sign in to the web console.", no_args_is_help=True)
console_app = typer.Typer(help="The web console: a sign-in link, live sessions, revoking them.", no_args_is_help=True)
app.add_typer(staff_app, name="staff")
app.add_typer(console_app, name="console")


@staff_app.command("add")
def staff_add(
    email: str,
    name: Annotated[str | None, typer.Option("--name", help="The person's name (the sign-in mail greets it).")] = None,
    language: Annotated[str, typer.Option("--language", help="ko or en: the mails' and pages' language.")] = "ko",
    role: Annotated[str, typer.Option("--role", help="The account's role: admin, the office's one role.")] = "admin",
    actor: Annotated[str, typer.Option("--actor", help="Who adds the account.")] = "cli",
    as_json: ChangedJson = False,
) -> None:
    """Add a staff account (role admin), or enable a disabled one again."""
    if role != "admin":
        raise InvalidInput(
            f"--role {role!r}: a staff account is an admin (the office); an evaluator signs in with the"
            " committee's e-mail and a local government with its contacts' addresses, no account needed"
        )
    row, done = sessions.add_staff(state.app(), email, name, language, actor)
    output.done(
        as_json,
        {"email": row["email"], "name": row["name"], "role": row["role"], "language": row["language"], "done": done},
        f"staff {row['email']} ({row['role']}, {row['language']}): {done}",
        f"a first sign-in link: gongmo console link {row['email']}",
    )


@staff_app.command("list")
def staff_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every staff account: e-mail, name, role, language, created, disabled."""
    a = state.app()
    with read(a.db) as conn:
        rows = sessions.staff_listing(conn)
    if as_json:
        output.print_json(rows)
        return
    output.print_rows(
        "staff (KST)",
        ["e-mail", "name", "role", "language", "created", "by", "disabled"],
        [
            [
                r["email"],
                r["name"] or "",
                r["role"],
                r["language"],
                output.kst(r["created_at"]),
                r["created_by"],
                output.kst(r["disabled_at"]),
            ]
            for r in rows
        ],
    )


@staff_app.command("disable")
def staff_disable(email: str, as_json: ChangedJson = False) -> None:
    """Disable a staff account: its sessions end at once and its links stop working."""
    row, revoked = sessions.disable_staff(state.app(), email)
    output.done(
        as_json,
        {"email": row["email"], "disabled_at": row["disabled_at"], "sessions_revoked": revoked},
        f"staff {row['email']}: disabled; {revoked} live session(s) revoked",
    )


@console_app.command("link")
def console_link(
    email: str,
    next_path: Annotated[str | None, typer.Option("--next", help="Where to go after signing in, e.g. /office.")] = None,
) -> None:
    """Print a one-time sign-in link for a staff account (a first sign-in; no mail is sent).
    It works once, for 15 minutes; only its SHA-256 is kept."""
    a = state.app()
    raw = sessions.staff_link(a, email)
    url = sessions.link_url(a.loaded.config.console_url(), raw, next_path)
    output.console.print(
        f"sign-in link for {email.strip().lower()} (works once, for 15 minutes; do not share it):", markup=False
    )
    sys.stdout.write(url + "\n")


@console_app.command("sessions")
def console_sessions(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The live sessions (never their ids' secrets): who, from where, since, last seen, ends."""
    a = state.app()
    with read(a.db) as conn:
        rows = sessions.live_sessions(conn, a.clock.now())
    if as_json:
        output.print_json(rows)
        return
    output.print_rows(
        "live console sessions (KST)",
        ["id", "role", "subject", "client", "signed in", "last seen", "ends"],
        [
            [
                str(r["id"]),
                r["role"],
                r["subject"],
                r["client"] or "",
                output.kst(r["created_at"]),
                output.kst(r["last_seen_at"]),
                output.kst(r["ends_at"]),
            ]
            for r in rows
        ],
    )


@console_app.command("revoke")
def console_revoke(
    session_id: Annotated[int | None, typer.Argument(help="One session (see `gongmo console sessions`).")] = None,
    email: Annotated[str | None, typer.Option("--email", help="Every session of this staff member.")] = None,
    as_json: ChangedJson = False,
) -> None:
    """End a session at once (its next page asks to sign in again), or every session of a person."""
    if (session_id is None) == (email is None):
        raise InvalidInput("console revoke: name one SESSION_ID, or --email for all of a person's sessions")
    a = state.app()
    if session_id is not None:
        bounded(session_id, "SESSION_ID")
        row = sessions.revoke_session(a, session_id)
        output.done(
            as_json,
            {"revoked": 1, "session_id": session_id, "role": row["role"], "subject": row["subject"]},
            f"session {session_id} ({row['role']}, {row['subject']}) revoked",
        )
        return
    assert email is not None
    count = sessions.revoke_person(a, email)
    output.done(
        as_json,
        {"revoked": count, "email": email.strip().lower()},
        f"{count} live session(s) of {email.strip().lower()} revoked",
    )

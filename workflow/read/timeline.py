"""One application's whole story for the office console's application page: what the API's
detail shows (read/visibility.detail: the same rule, check_access first), its rows merged into
one timeline in time order, the applicant's contact, and the triggers the caller may fire now.

The timeline merges four kinds of row, each as the visibility rule lets the caller read it:
- `audit`: the state changes (trigger, from -> to, actor, role, reason, what the move recorded);
- `event`: every decision that is not a state change (checklists, assignments, scores and their
  corrections, uploads, downloads, objections, kickoff plans);
- `calendar`: the track's reschedules and this application's own extensions;
- `notice`: the outbox rows queued for it, with their delivery (state, attempts, sent_at, the
  last SMTP answer, what superseded one).
At one instant a move's audit row comes first, then what it recorded, then its notices. The hash
chain's columns (seq, hash) are `gongmo audit verify`'s business and are left out; so are a
notice's rendered bodies (the outbox page shows one notice whole).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

from gongmo.states.eligibility import Check, failures
from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.states.lifecycle import Role
from gongmo.states.rules import OVERRIDING, MoveFacts, override
from gongmo.workflow.core.tokens import Principal
from gongmo.workflow.read import applicants, visibility

if TYPE_CHECKING:
    from gongmo.workflow.engine.app import App

# The order of the kinds of row at one instant: a move, what it recorded, the calendar, its notices.
SOURCES = ("audit", "event", "calendar", "notice")
_RANK = {name: i for i, name in enumerate(SOURCES)}
# Columns no timeline row shows: the hash chain's, and a notice's rendered bodies and keys.
HIDDEN = frozenset({"seq", "hash", "body_text", "body_html", "ics", "dedup_key", "lease_until"})
# What the office reads of the applicant beside its name and code.
CONTACT_FIELDS = ("kind", "population", "contact_name", "email", "language")


@dataclass(frozen=True)
class Choice:
    """A trigger the caller may fire now: where it leads, and whether it must say why
    (`needs_reason`; `overrides` names the rule it goes against, if that is the cause)."""

    trigger: str
    dest: str
    needs_reason: bool
    overrides: str | None = None


def of_application(app: App, conn: Connection, who: Principal, application_id: int) -> dict[str, Any]:
    """The application as `who` may see it (visibility.detail), with `timeline` (merged, in time
    order), `choices` (the triggers allowed now) and, for the office, the applicant's `contact`."""
    shown = visibility.detail(app, conn, who, application_id)
    shown["timeline"] = merge(shown)
    shown["choices"] = choices(app, shown)
    contact = applicants.by_code(conn, shown["applicant_code"]) if who.role == Role.ADMIN else None
    shown["contact"] = {k: contact[k] for k in CONTACT_FIELDS} if contact is not None else None
    return shown


def merge(shown: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows of a detail (history, events, calendar_changes, notices) as one list in time order;
    each row carries its `source`, its instant `at` and its own fields (no chain columns)."""
    rows: list[tuple[Any, int, int, dict[str, Any]]] = []
    for h in shown["history"]:
        rows.append((h["at"], _RANK["audit"], int(h["id"]), {"source": "audit", **_visible(h), "detail": _json(h)}))
    for e in shown["events"]:
        rows.append((e["at"], _RANK["event"], int(e["id"]), {"source": "event", **_visible(e)}))
    for i, c in enumerate(shown["calendar_changes"]):
        rows.append((c["at"], _RANK["calendar"], i, {"source": "calendar", **c}))
    for n in shown["notices"]:
        rows.append(
            (n["created_at"], _RANK["notice"], int(n["id"]), {"source": "notice", "at": n["created_at"], **_visible(n)})
        )
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    return [r[3] for r in rows]


def _visible(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in HIDDEN}


def _json(row: Mapping[str, Any]) -> Any:
    """What a move recorded besides its reason (the audit row's JSON detail), parsed; None if nothing."""
    raw = row.get("detail")
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return raw


def choices(app: App, shown: Mapping[str, Any]) -> list[Choice]:
    """The triggers of the detail's `actions` (the table's, for the caller's role, from the state it
    is in), each with its destination and whether the rules require a reason: the trigger always
    does (the table's needs_reason), or the move would go against a rule (states/rules.override)."""
    _, track = app.loaded.config.track(shown["track"])
    checks = [Check(**c) for c in shown.get("checklist") or []]
    score = shown.get("score")
    facts = MoveFacts(
        eligible=shown.get("eligible"),
        failed=failures(checks),
        score=Decimal(score) if score is not None else None,
        minimum_score=track.evaluation.minimum_score,
    )
    out = []
    for name in shown["actions"]:
        spec = TABLE.trigger(name)
        why = override(shown["state"], name, facts) if name in OVERRIDING else None
        out.append(Choice(name, spec.dest, spec.needs_reason or why is not None, why))
    return out

"""The office's actions on the outbox: retrying dead notices, one or in bulk."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import OUTBOX
from gongmo.workflow.engine.app import App
from gongmo.workflow.outbox import office
from tests.conftest import config_copy, kst
from tests.smtp_server import FaultySMTP, smtp_server_fixture  # noqa: F401
from tests.workflow.outbox.test_dispatch import ADMIN, TRACK, deliver, lifecycle, outbox, smtp_mailer, untouched

# -- retrying in bulk ------------------------------------------------------------------------


def dead_notices(app: App, clock: FixedClock, server: FaultySMTP) -> dict[str, list[int]]:
    """Two tracks' calls, some to refused mailboxes: dead rows per track, the hub's queued an hour later."""
    clock.set(kst("2024-03-29 10:00"))
    app.moves.announce(TRACK, ADMIN)
    clock.advance(timedelta(hours=1))
    app.moves.announce("hub-2024", ADMIN)
    rows = outbox(app)
    mine = [r["to_addr"] for r in rows if r["created_at"] == kst("2024-03-29 10:00")][:2]
    hub = [r["to_addr"] for r in rows if r["created_at"] == kst("2024-03-29 11:00") and r["to_addr"] not in mine]
    for addr in (*mine, hub[0]):
        server.refuse_recipient(addr)
    deliver(smtp_mailer(app, server))
    with read(app.db) as conn:
        rows = conn.execute(
            sa.text(
                "SELECT o.id, t.key FROM outbox o JOIN application a ON a.id = o.application_id"
                " JOIN track t ON t.id = a.track_id WHERE o.state = 'dead' ORDER BY o.id"
            )
        ).all()
    out: dict[str, list[int]] = {}
    for outbox_id, track in rows:
        out.setdefault(track, []).append(outbox_id)
    return out


def test_dead_notices_are_retried_in_bulk_by_track_and_since(
    app: App, clock: FixedClock, smtp_server: FaultySMTP
) -> None:
    dead = dead_notices(app, clock, smtp_server)
    assert len(dead[TRACK]) == 2 and len(dead["hub-2024"]) >= 1
    clock.advance(timedelta(hours=1))
    assert office.retry_all(app, "dead", track="hub-2024") == len(dead["hub-2024"])
    states = {r["id"]: r for r in outbox(app)}
    assert all((states[i]["state"], states[i]["attempts"]) == ("pending", 0) for i in dead["hub-2024"])
    assert all(states[i]["next_attempt_at"] == clock.now() for i in dead["hub-2024"])
    assert all(states[i]["state"] == "dead" for i in dead[TRACK])
    assert office.retry_all(app, "dead", since=kst("2024-03-29 10:30")) == 0  # TRACK's were queued at 10:00
    assert office.retry_all(app, "dead", since=kst("2024-03-29 10:00")) == 2
    assert {r["state"] for r in outbox(app)} == {"sent", "pending"}
    smtp_server.clear_faults()
    assert deliver(smtp_mailer(app, smtp_server)).sent == 2 + len(dead["hub-2024"])


def test_a_dead_result_corrected_since_is_not_retried(app: App, clock: FixedClock, smtp_server: FaultySMTP) -> None:
    """A 'selected' that died, then corrected to 'waitlisted': sending it now would tell a lie."""
    lifecycle(app, clock)  # one application selected then waitlisted (its 'selected' cancelled), one selected
    with write(app.db) as conn:  # both 'selected' rows are dead, as a relay refusing them would leave them
        conn.execute(sa.update(OUTBOX).where(OUTBOX.c.notice == "selected").values(state="dead", last_error="550"))
    rows = {r["id"]: r for r in outbox(app)}
    selected = sorted(i for i, r in rows.items() if r["notice"] == "selected")
    corrected = [
        i
        for i in selected
        if any(r["notice"] == "waitlisted" and r["application_id"] == rows[i]["application_id"] for r in rows.values())
    ]
    assert len(selected) == 2 and len(corrected) == 1
    assert office.retry_all(app, "dead") == 1
    after = {r["id"]: r["state"] for r in outbox(app)}
    assert after[corrected[0]] == "dead" and {after[i] for i in selected if i not in corrected} == {"pending"}


def test_the_cli_retries_dead_notices_in_bulk_and_refuses_what_it_cannot_do(
    app: App, clock: FixedClock, smtp_server: FaultySMTP, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import run_cli

    dead = dead_notices(app, clock, smtp_server)
    config = str(config_copy(tmp_path, database_url=str(app.db.url.render_as_string(hide_password=False))))
    before = untouched(app)
    for argv, says in (
        ([], "name an OUTBOX_ID, or --state dead"),
        (["--state", "sent"], "--state 'sent': only dead or retry"),
        (["--state", "dead", "--since", "yesterday"], "--since 'yesterday': not an ISO date-time"),
        (["--state", "dead", "--track", "no-such-track"], "unknown track 'no-such-track'"),
        ([str(dead[TRACK][0]), "--state", "dead"], "retry one row or many, not both"),
    ):
        code, out, err = run_cli(capsys, "--config", config, "outbox", "retry", *argv)
        assert code == 1 and err.count("\n") == 1 and says in err, (argv, err)
        assert untouched(app) == before
    code, out, _ = run_cli(
        capsys,
        "--config",
        config,
        "outbox",
        "retry",
        "--state",
        "dead",
        "--track",
        "hub-2024",
        "--since",
        "2024-03-29T11:00",
    )
    assert code == 0 and out.startswith(
        f"{len(dead['hub-2024'])} dead notice(s) of hub-2024 queued since 2024-03-29 11:00"
    )
    code, out, _ = run_cli(capsys, "--config", config, "outbox", "retry", str(dead[TRACK][0]))  # one row, as before
    assert code == 0 and out == f"outbox {dead[TRACK][0]}: dead -> pending\n"
    assert [r["state"] for r in outbox(app) if r["state"] == "dead"] == ["dead"]

"""Applications coming in (engine/intake.py): the announcement, the receipt window, submit; SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gongmo.states.errors import IllegalMove, InvalidInput, NotFound, OutsideWindow
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.db import read
from gongmo.workflow.core.models import APPLICANT, APPLICATION, OUTBOX
from gongmo.workflow.engine.app import App
from tests.conftest import kst
from tests.workflow.engine.test_moves import ADMIN, TRACK_KEY, counts, outbox_rows, submit, verify_clean

# -- announcement and receipt ----------------------------------------------------


def test_announce_invites_the_mailing_list_once(app: App) -> None:
    created = app.moves.announce(TRACK_KEY, ADMIN)
    # strong-and-small admits no special or metropolitan city: 20 - 2 sample rows
    assert created == 18
    assert app.moves.announce(TRACK_KEY, ADMIN) == 0
    with read(app.db) as conn:
        kinds = conn.execute(
            sa.select(APPLICANT.c.kind).join(APPLICATION, APPLICATION.c.applicant_id == APPLICANT.c.id)
        ).scalars()
        assert not {"special_city", "metropolitan_city"} & set(kinds)
        notices = conn.execute(sa.select(OUTBOX.c.notice, OUTBOX.c.language, OUTBOX.c.subject)).all()
    assert len(notices) == 18 and {n.notice for n in notices} == {"call_announcement"}
    english = [n.subject for n in notices if n.language == "en"]
    assert english and all("Strong-and-small smart city" in s for s in english)
    assert all("강소형 스마트도시" in n.subject for n in notices if n.language == "ko")
    verify_clean(app)


def test_announce_refused_before_its_time(app: App, clock: FixedClock) -> None:
    clock.set(kst("2024-03-29 09:59"))
    with pytest.raises(OutsideWindow, match="announced at 2024-03-29 10:00 KST"):
        app.moves.announce(TRACK_KEY, ADMIN)
    assert counts(app)["audit"] == 0


def test_receipt_one_second_before_close_accepted(app: App) -> None:
    app_id = submit(app, "41590", "2024-05-29 17:59:59")
    row = counts(app)
    assert row["states"][app_id] == "receipt"
    with read(app.db) as conn:
        receipt_no = conn.execute(sa.select(APPLICATION.c.receipt_no).where(APPLICATION.c.id == app_id)).scalar()
    assert receipt_no == "STRONG-SMALL-2024-0001"
    [notice] = outbox_rows(app, app_id)
    assert notice["notice"] == "receipt_confirmation" and receipt_no in notice["subject"]
    assert notice["dedup_key"] == f"{app_id}:receipt_confirmation:2"


@pytest.mark.parametrize("at", ["2024-05-29 18:00:00", "2024-05-29 18:00:01", "2024-05-27 08:59:59"])
def test_receipt_outside_window_refused_and_nothing_changes(app: App, at: str) -> None:
    app.moves.announce(TRACK_KEY, ADMIN)
    before = counts(app)
    with pytest.raises(OutsideWindow, match=r"2024-05-27 09:00:00 KST to 2024-05-29 18:00:00 KST"):
        submit(app, "41190", at)
    assert counts(app) == before


def test_receipt_numbers_are_sequential_per_track(app: App) -> None:
    ids = [submit(app, code) for code in ("41590", "41190", "44150")]
    with read(app.db) as conn:
        numbers = conn.execute(
            sa.select(APPLICATION.c.receipt_no).where(APPLICATION.c.id.in_(ids)).order_by(APPLICATION.c.id)
        ).scalars()
        assert list(numbers) == [f"STRONG-SMALL-2024-000{i}" for i in (1, 2, 3)]


def test_submit_twice_is_refused(app: App) -> None:
    submit(app, "41590")
    before = counts(app)
    # its documents are there from the first submission (uploading again would be a replacement)
    with pytest.raises(IllegalMove, match=r"cannot 'submit' application \d+ in state 'receipt'"):
        app.moves.submit(TRACK_KEY, "41590", 8_000_000_000, 8_000_000_000, ADMIN, "계획", "climate_crisis")
    assert counts(app) == before


def test_submit_values_checked(app: App) -> None:
    with pytest.raises(InvalidInput, match=r"^national_krw = -1: "):
        app.moves.submit(TRACK_KEY, "41590", -1, 0, ADMIN)
    with pytest.raises(InvalidInput, match="'smart_farm' is not a type of track strong-small-2024"):
        app.moves.submit(TRACK_KEY, "41590", 1, 1, ADMIN, project_type="smart_farm")
    with pytest.raises(NotFound, match="no applicant with code '99999'"):
        submit(app, "99999")
    assert counts(app)["audit"] == 0

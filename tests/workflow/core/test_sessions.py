"""core/sessions: sessions (idle 30 min, absolute 12 h, revoked, the staff account required),
one-time links, staff accounts, the rate limits and `next`, on a fresh app and its moved clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from gongmo.states.errors import Conflict, InvalidInput, NotFound
from gongmo.workflow.core import sessions
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import SIGNIN_ATTEMPT, STAFF, WEB_SESSION
from gongmo.workflow.engine.app import App
from tests.conftest import make_app

EMAIL = "office-park@molit.go.kr"


@pytest.fixture
def app(tmp_path: Path, clock: FixedClock) -> Iterator[App]:
    built = make_app(f"sqlite:///{tmp_path}/gongmo.db", clock)
    sessions.add_staff(built, EMAIL, name="박서준", created_by="test")
    yield built
    built.db.dispose()


def alive(app: App, raw: str) -> sessions.Session | None:
    with read(app.db) as conn:
        return sessions.authenticate(conn, raw, app.clock.now())


def later(app: App, **span: float) -> None:
    clock = app.clock
    assert isinstance(clock, FixedClock)
    clock.set(clock.now() + timedelta(**span))


def touch(app: App, raw: str) -> None:
    found = alive(app, raw)
    assert found is not None
    with write(app.db) as conn:
        sessions.touch(conn, found.id, app.clock.now())


def test_a_session_ends_after_30_idle_minutes(app: App) -> None:
    raw = sessions.open_session(app, "admin", EMAIL)
    later(app, minutes=29, seconds=59)
    assert alive(app, raw) is not None
    touch(app, raw)
    later(app, minutes=29, seconds=59)
    assert alive(app, raw) is not None  # the touch moved its idle limit
    later(app, seconds=1)
    assert alive(app, raw) is None


def test_a_session_ends_12_hours_after_it_opened_however_busy(app: App) -> None:
    raw = sessions.open_session(app, "admin", EMAIL)
    for _ in range(12 * 3 - 1):
        later(app, minutes=20)
        touch(app, raw)
    later(app, minutes=19, seconds=59)
    assert alive(app, raw) is not None
    later(app, seconds=1)
    assert alive(app, raw) is None


def test_a_revoked_session_ends_at_once(app: App) -> None:
    raw = sessions.open_session(app, "admin", EMAIL)
    other = sessions.open_session(app, "admin", EMAIL)
    found = alive(app, raw)
    assert found is not None
    row = sessions.revoke_session(app, found.id)
    assert row["subject"] == EMAIL and "session_sha256" not in row
    assert alive(app, raw) is None and alive(app, other) is not None
    with pytest.raises(Conflict, match="already revoked"):
        sessions.revoke_session(app, found.id)
    assert sessions.revoke_person(app, EMAIL.upper()) == 1
    assert alive(app, other) is None


def test_an_office_session_needs_an_active_staff_account(app: App) -> None:
    with pytest.raises(NotFound, match=r"no staff account nobody@molit\.go\.kr"):
        sessions.open_session(app, "admin", "nobody@molit.go.kr")
    raw = sessions.open_session(app, "admin", EMAIL)
    found = alive(app, raw)
    assert found is not None and found.principal.actor.name == EMAIL and found.language == "ko"
    with write(app.db) as conn:  # disabled behind the service's back: the session stops resolving anyway
        conn.execute(sa.update(STAFF).values(disabled_at=app.clock.now()))
    assert alive(app, raw) is None


def test_disabling_staff_revokes_its_sessions_and_add_enables_it_again(app: App) -> None:
    raw = sessions.open_session(app, "admin", EMAIL)
    row, revoked = sessions.disable_staff(app, EMAIL)
    assert revoked == 1 and row["disabled_at"] == app.clock.now()
    with pytest.raises(Conflict, match="already disabled"):
        sessions.disable_staff(app, EMAIL)
    with pytest.raises(NotFound, match="no staff account"):
        sessions.staff_link(app, EMAIL)
    _, done = sessions.add_staff(app, EMAIL, language="en")
    assert done == "enabled again"
    assert alive(app, raw) is None  # revoked stays revoked
    found = alive(app, sessions.open_session(app, "admin", EMAIL))
    assert found is not None and found.language == "en"
    with pytest.raises(Conflict, match="already has an account"):
        sessions.add_staff(app, EMAIL)


def test_staff_input_is_checked(app: App) -> None:
    with pytest.raises(InvalidInput, match="not an e-mail address"):
        sessions.add_staff(app, "office")
    with pytest.raises(InvalidInput, match="write ko or en"):
        sessions.add_staff(app, "new@molit.go.kr", language="jp")


def test_the_config_staff_are_created_once_and_a_disabled_one_stays_disabled(app: App) -> None:
    now = app.clock.now()
    with write(app.db) as conn:
        assert sessions.sync_staff(conn, ["new@molit.go.kr"], now) == ["staff new@molit.go.kr: created"]
        assert sessions.sync_staff(conn, ["new@molit.go.kr"], now) == []
    sessions.disable_staff(app, "new@molit.go.kr")
    with write(app.db) as conn:
        (line,) = sessions.sync_staff(conn, ["new@molit.go.kr"], now)
    assert "kept disabled" in line
    with read(app.db) as conn:
        assert "office@molit.go.kr" in [r["email"] for r in sessions.staff_listing(conn)]  # config.toml's


def test_a_link_works_once_and_only_for_15_minutes(app: App) -> None:
    first = sessions.staff_link(app, EMAIL)
    raw, found = sessions.redeem(app, first, "10.0.0.1")
    assert found.subject == EMAIL and alive(app, raw) is not None
    with pytest.raises(sessions.LinkRefused) as used:
        sessions.redeem(app, first, "10.0.0.1")
    assert used.value.problem == "used"
    second = sessions.staff_link(app, EMAIL)
    later(app, minutes=15)
    with pytest.raises(sessions.LinkRefused) as expired:
        sessions.redeem(app, second, "10.0.0.1")
    assert expired.value.problem == "expired"
    with pytest.raises(sessions.LinkRefused) as unknown:
        sessions.redeem(app, "nothing", "10.0.0.1")
    assert unknown.value.problem == "unknown"
    with read(app.db) as conn:
        oks = [r.ok for r in conn.execute(sa.select(SIGNIN_ATTEMPT.c.ok).order_by(SIGNIN_ATTEMPT.c.id))]
        assert conn.execute(sa.select(sa.func.count()).select_from(WEB_SESSION)).scalar_one() == 1
    assert oks == [True, False, False, False]


def test_failed_links_are_limited_per_client_not_for_others(app: App) -> None:
    for _ in range(sessions.FAILED_LINKS_PER_CLIENT):
        with pytest.raises(sessions.LinkRefused):
            sessions.redeem(app, "guess", "10.0.0.9")
    good = sessions.staff_link(app, EMAIL)
    with pytest.raises(sessions.RateLimited, match="try again in 15 minute") as limited:
        sessions.redeem(app, good, "10.0.0.9")
    assert limited.value.retry_at == app.clock.now() + sessions.WINDOW
    sessions.redeem(app, good, "10.0.0.10")  # another client is not held back


def test_requests_are_limited_per_address_and_per_client(app: App) -> None:
    now = app.clock.now()
    with write(app.db) as conn:
        for i in range(sessions.REQUESTS_PER_ADDRESS):
            sessions.limit_requests(conn, EMAIL, f"10.0.0.{i}", now)
            sessions.record(conn, sessions.REQUEST, EMAIL, f"10.0.0.{i}", now + timedelta(minutes=i), ok=True)
    with read(app.db) as conn, pytest.raises(sessions.RateLimited) as limited:
        sessions.limit_requests(conn, EMAIL, "10.0.1.1", now + timedelta(minutes=5))
    assert limited.value.retry_at == now + sessions.WINDOW  # the oldest of the five leaves the window
    with read(app.db) as conn:
        sessions.limit_requests(conn, EMAIL, "10.0.1.1", now + sessions.WINDOW + timedelta(seconds=1))
        sessions.limit_requests(conn, "other@molit.go.kr", "10.0.1.1", now + timedelta(minutes=5))


@pytest.mark.parametrize(
    "given,expected",
    [
        ("/office/tracks/hub-2024?state=received", "/office/tracks/hub-2024?state=received"),
        ("https://evil.example/", "/office"),
        ("//evil.example", "/office"),
        ("/\\evil.example", "/office"),
        ("/office\r\nSet-Cookie: x=1", "/office"),
        ("office", "/office"),
        (None, "/office"),
    ],
)
def test_next_is_a_local_path(given: str | None, expected: str) -> None:
    assert sessions.local_path(given) == expected


def test_a_link_url_carries_a_local_next_only() -> None:
    assert sessions.link_url("https://gongmo.go.kr/", "T") == "https://gongmo.go.kr/signin/T"
    assert sessions.link_url("http://x", "T", "/office/outbox") == "http://x/signin/T?next=/office/outbox"
    assert sessions.link_url("http://x", "T", "https://evil.example") == "http://x/signin/T"

"""Outbox rows of a move: the call's calendar is built once per language, not per applicant."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import sqlalchemy as sa

from states.lifecycle import Role
from tests.conftest import kst
from workflow import notify
from workflow.actors import Actor
from workflow.app import App
from workflow.clock import FixedClock
from workflow.db import read
from workflow.models import OUTBOX

TRACK = "strong-small-2024"


def test_a_call_to_applicants_of_both_languages_builds_each_calendar_once(
    app: App, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    real = notify.track_calendar

    def counted(**kwargs: Any) -> bytes:
        built.append(kwargs["contest_name"])
        return real(**kwargs)

    monkeypatch.setattr(notify, "track_calendar", counted)
    clock.set(kst("2024-03-29 10:00"))
    sent = app.engine.announce(TRACK, Actor("park", Role.ADMIN))
    with read(app.db) as conn:
        rows = conn.execute(sa.select(OUTBOX.c.language, OUTBOX.c.ics)).all()
    languages = [language for language, _ in rows]
    assert sent == len(rows) > 2 and set(languages) == {"ko", "en"}
    switches = sum(a != b for a, b in itertools.pairwise(languages))
    assert switches >= 2  # ko, en, ko...: a cache of one entry would build 1 + switches calendars
    assert len(built) == 2
    assert {language: len({ics for lang, ics in rows if lang == language}) for language in ("ko", "en")} == {
        "ko": 1,
        "en": 1,
    }

"""The office's actions on the outbox: retry a row or every dead one, see what is
held, release held notices (and with the last held result, the track's results).

Each is one transaction; the mailer sends what they make due at its next pass.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from gongmo.states.errors import Conflict, InvalidInput, NotFound
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import APPLICATION, OUTBOX, TRACK
from gongmo.workflow.engine.app import App
from gongmo.workflow.outbox.notifier import superseded_by
from gongmo.workflow.outbox.states import DEAD, HELD, PENDING, RETRYABLE, RETRYABLE_ONE


def retry_now(app: App, outbox_id: int) -> str:
    """Send a dead or waiting row again at the next delivery."""
    now = app.clock.now()
    with write(app.db) as conn:
        row = conn.execute(sa.select(OUTBOX.c.state).where(OUTBOX.c.id == outbox_id)).first()
        if row is None:
            raise NotFound(f"no outbox row {outbox_id}: see `gongmo outbox`")
        if row.state not in RETRYABLE_ONE:
            raise Conflict(f"outbox {outbox_id} is '{row.state}': only dead, retry or pending rows can be retried")
        conn.execute(
            sa.update(OUTBOX)
            .where(OUTBOX.c.id == outbox_id, OUTBOX.c.state == row.state)
            .values(state=PENDING, next_attempt_at=now, attempts=0)
        )
    return str(row.state)


RESULTS = "results"  # `outbox release TRACK results`: every held result notice of the track at once


def _released_notices(app: App, track_key: str, notice: str) -> list[str]:
    _, track = app.loaded.config.track(track_key)
    if notice == RESULTS:
        return list(track.hold_notices)
    return [notice]


def retry_all(app: App, state: str = DEAD, since: datetime | None = None, track: str | None = None) -> int:
    """Send every `state` (dead or retry) row again at the next delivery, its attempts
    reset; only those queued at or after `since` and of `track`'s applications, if
    given. A row a newer notice of its application replaces (a 'selected' corrected
    to 'waitlisted') is left as it is: it must never go out after its correction."""
    if state not in RETRYABLE:
        raise InvalidInput(
            "{given}: only dead or retry notices are retried in bulk; write {field} dead",
            field="state",
            value=state,
            shown=repr(state),
        )
    if track is not None:
        app.loaded.config.track(track)
    now = app.clock.now()
    where = [OUTBOX.c.state == state]
    if since is not None:
        where.append(OUTBOX.c.created_at >= since)
    with write(app.db) as conn:
        if track is not None:
            track_id = conn.execute(sa.select(TRACK.c.id).where(TRACK.c.key == track)).scalar()
            if track_id is None:
                raise InvalidInput(f"track {track} is not in the database: run `gongmo init`")
            apps = sa.select(APPLICATION.c.id).where(APPLICATION.c.track_id == track_id)
            where.append(OUTBOX.c.application_id.in_(apps))
        kinds = conn.execute(sa.select(OUTBOX.c.notice).where(*where).distinct()).scalars().all()
        newer = OUTBOX.alias("newer")
        replaced = [
            sa.and_(
                OUTBOX.c.notice == kind,
                sa.exists().where(
                    newer.c.application_id == OUTBOX.c.application_id,
                    newer.c.id > OUTBOX.c.id,
                    newer.c.notice.in_(sorted(by)),
                ),
            )
            for kind in kinds
            if (by := superseded_by(kind))
        ]
        if replaced:
            where.append(sa.not_(sa.or_(*replaced)))
        result = conn.execute(
            sa.update(OUTBOX).where(*where).values(state=PENDING, next_attempt_at=now, attempts=0, lease_until=None)
        )
    return int(result.rowcount)


def held(app: App, track_key: str, notice: str) -> dict[str, dict[str, int]]:
    """What a release would send: counts by language and subject (`results`: every held result)."""
    notices = _released_notices(app, track_key, notice)
    with read(app.db) as conn:
        query = (
            sa.select(OUTBOX.c.language, OUTBOX.c.subject, sa.func.count())
            .join(APPLICATION, APPLICATION.c.id == OUTBOX.c.application_id)
            .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
            .where(TRACK.c.key == track_key, OUTBOX.c.notice.in_(notices), OUTBOX.c.state == HELD)
            .group_by(OUTBOX.c.language, OUTBOX.c.subject)
        )
        out: dict[str, dict[str, int]] = {}
        for language, subject, n in conn.execute(query):
            out.setdefault(language, {})[subject] = int(n)
    return out


def release(app: App, track_key: str, notice: str, expected: int | None = None) -> int:
    """Let the held notices of a track go out, now (`results`: every held result
    notice). With `expected`, only if exactly that many are held (what the person
    releasing saw); else nothing. When no held result of the track is left, the
    track's results are released: the embargo lifts for every reader, and a result
    queued later goes out at once."""
    _, track = app.loaded.config.track(track_key)
    notices = _released_notices(app, track_key, notice)
    now = app.clock.now()
    with write(app.db) as conn:
        track_id = conn.execute(sa.select(TRACK.c.id).where(TRACK.c.key == track_key)).scalar()
        if track_id is None:
            raise InvalidInput(f"track {track_key} is not in the database: run `gongmo init`")
        apps = sa.select(APPLICATION.c.id).where(APPLICATION.c.track_id == track_id)
        held_now = (OUTBOX.c.state == HELD) & (OUTBOX.c.notice.in_(notices)) & OUTBOX.c.application_id.in_(apps)
        if expected is not None:
            count = conn.execute(sa.select(sa.func.count()).where(held_now)).scalar_one()
            if count != expected:
                raise Conflict(
                    f"{track_key}: {count} '{notice}' notices are held, not {expected}: look again before releasing"
                )
        result = conn.execute(sa.update(OUTBOX).where(held_now).values(state=PENDING, next_attempt_at=now))
        results_left = (
            (OUTBOX.c.state == HELD) & OUTBOX.c.notice.in_(list(track.hold_notices)) & OUTBOX.c.application_id.in_(apps)
        )
        if not conn.execute(sa.select(sa.exists().where(results_left))).scalar():
            conn.execute(
                sa.update(TRACK)
                .where(
                    TRACK.c.id == track_id,
                    TRACK.c.results_embargoed_at.is_not(None),
                    TRACK.c.results_released_at.is_(None),
                )
                .values(results_released_at=now)
            )
    return int(result.rowcount)

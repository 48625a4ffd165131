"""Turn a move into outbox rows: the notice's values, rendered, with keys.

Runs inside the transaction of the move (rendering is CPU only, no I/O
beyond the template cache); delivery happens after commit, elsewhere.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from typing import Any

from gongmo.notifications.ics import Milestone, presentation_slot, track_calendar
from gongmo.notifications.notices import NOTICES, superseded_by, supersedes
from gongmo.notifications.reasons import is_reason, lines
from gongmo.notifications.reasons import render as render_reason
from gongmo.notifications.render import MILESTONES, Renderer
from gongmo.workflow.core.closures import Closures
from gongmo.workflow.core.config import Contest, Track
from gongmo.workflow.outbox.states import HELD, PENDING

__all__ = ["Notifier", "Party", "superseded_by", "supersedes"]

# The dates an applicant puts in a calendar: the call's .ics.
ICS_MILESTONES = ("receipt_opens", "receipt_closes", "presentation_starts", "presentation_ends", "selection_at")
# Calendars kept built: one per (track, language, dates, instant); a call to a
# track mixing Korean and English applicants alternates between two of them.
ICS_CACHE_SIZE = 16


def _atom(text: str) -> str:
    """Text safe inside a Message-ID (RFC 5322 dot-atom): no spaces, colons or brackets."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-.") or "x"


@dataclass(frozen=True)
class Party:
    """What a notice needs to know of one application and its applicant."""

    application_id: int
    version: int
    applicant_name: str
    contact_name: str
    email: str
    language: str
    receipt_no: str | None = None
    title: str | None = None
    national_krw: int | None = None
    local_krw: int | None = None
    submitted_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Party:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__ if k in row})


class Notifier:
    def __init__(self, renderer: Renderer, sender: str) -> None:
        self.renderer = renderer
        domain = parseaddr(sender)[1].rpartition("@")[2] or "gongmo.invalid"
        self.domain = domain
        self._ics_cache: dict[Any, str] = {}
        self._ics_lock = threading.Lock()
        self._closures_cache: dict[str, Closures] = {}

    def row(
        self,
        notice: str,
        party: Party,
        contest: Contest,
        track: Track,
        calendar: Mapping[str, Any],
        now: datetime,
        extra: Mapping[str, Any] | None = None,
        tag: str | None = None,
        hold: bool = False,
    ) -> dict[str, Any]:
        """One outbox row, rendered; keyed by (application, notice, round);
        `hold` keeps it until the office releases it (a result under embargo).

        The round is the application's version after the move, or `tag` for
        a notice that moves nothing (a reminder: the deadline's key).

        `calendar` is the track's calendar as the database holds it (it may
        have been moved since the config was written).
        """
        values = self._values(notice, party, contest, track, calendar, now, extra or {})
        rendered = self.renderer.render(notice, party.language, values, contest.timezone)
        round_ = tag or str(party.version)
        ics = None
        if notice == "call_announcement":
            ics = self._track_ics(contest, track, calendar, party.language, now)
        elif notice == "presentation_invitation":
            ko = party.language == "ko"
            ics = presentation_slot(
                contest_name=contest.name_ko if ko else contest.name_en,
                track_name=track.name_ko if ko else track.name_en,
                application_id=party.application_id,
                receipt_no=party.receipt_no or "-",
                starts=values["slot_starts"],
                ends=values["slot_ends"],
                place=values["place"],
                zone=contest.timezone,
                uid_domain=self.domain,
                now=now,
                label="발표평가" if ko else "Presentation evaluation",
            ).decode("utf-8")
        return {
            "application_id": party.application_id,
            "notice": notice,
            "dedup_key": f"{party.application_id}:{notice}:{round_}",
            "message_id": f"<gongmo.{party.application_id}.{notice}.{_atom(round_)}@{self.domain}>",
            "language": party.language,
            "to_addr": party.email,
            "subject": rendered.subject,
            "body_text": rendered.text,
            "body_html": rendered.html,
            "ics": ics,
            "state": HELD if hold else PENDING,
            "attempts": 0,
            "created_at": now,
            "next_attempt_at": now,
        }

    def _closures(self, contest: Contest) -> Closures:
        """The contest's closed days, built once per contest (the config does not change while running)."""
        found = self._closures_cache.get(contest.key)
        if found is None:
            found = self._closures_cache[contest.key] = contest.closures()
        return found

    def _track_ics(
        self, contest: Contest, track: Track, calendar: Mapping[str, Any], language: str, now: datetime
    ) -> str:
        """The track's key dates as an .ics; the same for every applicant of one
        language in one call, so built once and reused."""
        key = (track.key, language, tuple(sorted(calendar.items())), now)
        cached = self._ics_cache.get(key)
        if cached is None:
            labels = MILESTONES.get(language, MILESTONES["ko"])
            milestones = [Milestone(m, labels[m], calendar[m]) for m in ICS_MILESTONES]
            cached = track_calendar(
                contest_name=contest.name_ko if language == "ko" else contest.name_en,
                track_name=track.name_ko if language == "ko" else track.name_en,
                track_key=track.key,
                milestones=milestones,
                zone=contest.timezone,
                uid_domain=self.domain,
                now=now,
            ).decode("utf-8")
            with self._ics_lock:  # the ticker and the API's threads share the cache
                if len(self._ics_cache) >= ICS_CACHE_SIZE:  # drop the oldest (dicts keep insertion order)
                    del self._ics_cache[next(iter(self._ics_cache))]
                self._ics_cache[key] = cached
        return cached

    def _values(
        self,
        notice: str,
        party: Party,
        contest: Contest,
        track: Track,
        cal: Mapping[str, Any],
        now: datetime,
        extra: Mapping[str, Any],
    ) -> dict[str, Any]:
        ko = party.language == "ko"
        available: dict[str, Any] = {
            "contest_name": contest.name_ko if ko else contest.name_en,
            "track_name": track.name_ko if ko else track.name_en,
            "applicant_name": party.applicant_name,
            "contact_name": party.contact_name,
            "application_id": party.application_id,
            "office": contest.office,
            "office_phone": contest.office_phone,
            "portal_url": contest.portal_url,
            "receipt_opens": cal["receipt_opens"],
            "receipt_closes": cal["receipt_closes"],
            "slots": track.slots,
            "national_cap_krw": track.funding.national_cap_krw,
            "program_years": track.funding.years,
            "match_ratio": track.funding.local_match_ratio,
            "receipt_no": party.receipt_no or "-",
            "submitted_at": party.submitted_at or now,
            "title": party.title or "",
            "national_krw": party.national_krw or 0,
            "local_krw": party.local_krw or 0,
            "evaluation_starts": cal["written_starts"],
            "objection_id": 0,
            "comments": "",
            "kickoff_due": cal["kickoff_due"],
            "withdrawn_at": now,
            "reason": "",
            "waitlist_position": 0,
            "explanation": [],  # a result by hand explains nothing; the selection's does
            **extra,
        }
        wanted = NOTICES[notice].allowed
        if "objection_until" in wanted and "objection_until" not in available:
            # Civil Act art. 161 (Contest.period_end_rule): a last day on a closed day moves to the next
            # working day. Only for the notices that state it: building the closures costs ~0.5 ms.
            closures = self._closures(contest)
            available["objection_until"] = closures.period_end(now, track.objection_days, contest.timezone)
        if is_reason(available["reason"]):  # gongmo's own reason: from the catalogue, in the applicant's language
            available["reason"] = render_reason(available["reason"], party.language)
        if is_reason(available["explanation"]):  # how a result was reached: one line each, in the same way
            available["explanation"] = lines(available["explanation"], party.language)
        missing = wanted - available.keys()
        if missing:
            raise KeyError(f"notice '{notice}' needs {', '.join(sorted(missing))}, which this move does not provide")
        return {k: available[k] for k in wanted}

"""The skeleton composition (`compose`) against the reference (`reference`, email.mime): the same
bytes for every notice in both languages, and what the standard library's parser reads back from
them: the headers (a Korean subject RFC 2047-encoded), every part decoded, the .ics attachment."""

from __future__ import annotations

import email
import re
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import pytest

from gongmo.notifications.compose import HeaderInjection, compose, reference
from gongmo.notifications.ics import Milestone, presentation_slot, track_calendar
from gongmo.notifications.notices import LANGUAGES, NOTICES, SAMPLE
from gongmo.notifications.render import Renderer

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
SENDER = "스마트시티 공모 <smartcity-contest@gongmo.example>"
NOW = datetime(2024, 3, 29, 1, 0, 5, tzinfo=UTC)
KST = timezone(timedelta(hours=9))


def _ics(kind: str, language: str) -> str | None:
    ko = language == "ko"
    if kind == "call_announcement":
        at = datetime(2024, 5, 29, 9, 0, tzinfo=UTC)
        milestones = [Milestone("receipt_closes", "접수 마감" if ko else "receipt closes", at)]
        data = track_calendar(
            contest_name="스마트시티" if ko else "Smart city",
            track_name="강소형" if ko else "Strong-and-small",
            track_key="strong-small-2024",
            milestones=milestones,
            zone="Asia/Seoul",
            uid_domain="gongmo.example",
            now=NOW,
        )
    elif kind == "presentation_invitation":
        starts = datetime(2024, 7, 2, 1, 0, tzinfo=UTC)
        data = presentation_slot(
            contest_name="스마트시티" if ko else "Smart city",
            track_name="강소형" if ko else "Strong-and-small",
            application_id=7,
            receipt_no="STRONG-SMALL-2024-0007",
            starts=starts,
            ends=starts + timedelta(minutes=30),
            place="세종청사 6동 회의실" if ko else "Sejong, building 6",
            zone="Asia/Seoul",
            uid_domain="gongmo.example",
            now=NOW,
        )
    else:
        return None
    return data.decode("utf-8")


def _rows() -> list[dict[str, Any]]:
    """One outbox row of every notice in every language, rendered from the packaged templates."""
    renderer = Renderer(TEMPLATES)
    rows = []
    for n, (notice, language) in enumerate((k, lang) for k in NOTICES for lang in LANGUAGES):
        rendered = renderer.render(notice, language, {k: SAMPLE[k] for k in NOTICES[notice].allowed}, "Asia/Seoul")
        rows.append(
            {
                "id": n,
                "notice": notice,
                "language": language,
                "message_id": f"<gongmo.{n}.{notice}.1@gongmo.example>",
                "to_addr": f"contact{n}@city{n}.go.kr",
                "subject": rendered.subject,
                "body_text": rendered.text,
                "body_html": rendered.html,
                "ics": _ics(notice, language),
                "created_at": NOW - timedelta(minutes=n),
            }
        )
    return rows


ROWS = _rows()


def _parsed(data: bytes) -> Message:
    return email.message_from_bytes(data.replace(b"\n", b"\r\n"), policy=policy.compat32)


def _header(message: Message, name: str) -> str:
    return str(make_header(decode_header(message[name])))


def _unfolded(message: Message, name: str) -> str:
    return re.sub(r"\r?\n[ \t]", " ", message[name]).strip()


def _same_message(row: dict[str, Any], sender: str = SENDER) -> Message:
    """compose and reference give the same envelope; the parser reads the row back from it."""
    fast = compose(row, sender, NOW)
    slow = reference(row, sender, NOW)
    assert fast.data == slow.data
    assert fast == slow
    message = _parsed(fast.data)
    assert _header(message, "Subject") == row["subject"]
    assert parseaddr(_header(message, "From")) == parseaddr(sender)
    assert parseaddr(_unfolded(message, "To"))[1] == parseaddr(row["to_addr"])[1]
    assert _unfolded(message, "Message-ID") == row["message_id"]
    assert email.utils.parsedate_to_datetime(message["Date"]) == (row.get("created_at") or NOW).replace(microsecond=0)
    assert message["X-Gongmo-Notice"] == row["notice"]
    assert message["Auto-Submitted"] == "auto-generated"
    body = message.get_payload(0) if row.get("ics") else message
    assert isinstance(body, Message) and body.get_content_type() == "multipart/alternative"
    text, html = body.get_payload()
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert text.get_payload(decode=True).decode(text.get_content_charset()) == row["body_text"]
    assert html.get_payload(decode=True).decode(html.get_content_charset()) == row["body_html"]
    if row.get("ics"):
        assert message.get_content_type() == "multipart/mixed"
        _, ics = message.get_payload()
        assert ics.get_content_type() == "text/calendar"
        assert ics.get_param("method") == "PUBLISH"
        assert ics.get_filename() == "gongmo.ics"
        assert ics.get_payload(decode=True).decode("utf-8") == row["ics"]
    return message


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['notice']}-{r['language']}" for r in ROWS])
def test_every_notice_composes_to_the_reference_bytes_and_parses_back(row: dict[str, Any]) -> None:
    _same_message(row)


def test_the_rows_cover_every_notice_both_languages_and_both_attachments() -> None:
    assert {(r["notice"], r["language"]) for r in ROWS} == {(k, lang) for k in NOTICES for lang in LANGUAGES}
    assert {r["notice"] for r in ROWS if r["ics"]} == {"call_announcement", "presentation_invitation"}


def test_a_korean_subject_is_rfc2047_base64_folded_within_78_columns() -> None:
    row = next(r for r in ROWS if r["language"] == "ko" and len(r["subject"]) > 30)
    data = compose(row, SENDER, NOW).data
    head = data.split(b"\n\n", 1)[0].decode("ascii")  # every header line is ASCII
    subject = head[head.index("Subject:") : head.index("\nFrom:")]
    assert subject.startswith("Subject: =?utf-8?b?")
    assert "\n " in subject  # folded
    assert all(len(line) <= 78 for line in head.splitlines())


@pytest.mark.parametrize(
    "change",
    [
        {"subject": "Plain ASCII subject"},
        {"subject": "x" * 200},  # one long word
        {"subject": "a rather long English subject " * 6},
        {"subject": "공모 " * 40},
        {"to_addr": "담당자 <smart@city.go.kr>"},  # a display name: the reference composes it
        {"to_addr": "Kim Minsu <kim.minsu+smart@city.go.kr>"},
        {"to_addr": "o'brien.x_y-z@sub-domain.city.example"},
        {"to_addr": "a" * 70 + "@" + "b" * 20 + ".example"},  # a To line longer than 78
        {"message_id": "<gongmo." + "9" * 90 + ".withdrawal_confirmed.3@gongmo.example>"},
        {"body_html": ""},
        {"body_text": "줄바꿈\r\n섞인\r본문\n"},
        {"ics": "BEGIN:VCALENDAR\r\nEND:VCALENDAR"},  # no newline at the end: no "courtesy newline"
        {"ics": None},
        {"created_at": None},  # the composition's own time
        {"created_at": datetime(2024, 3, 29, 10, 0, 5, tzinfo=KST)},  # the same instant in +0900: its own Date
    ],
    ids=lambda change: ",".join(f"{k}={str(v)[:20]}" for k, v in change.items()),
)
def test_unusual_rows_compose_to_the_reference_bytes(change: dict[str, Any]) -> None:
    _same_message(ROWS[0] | change)


def test_the_same_instant_in_another_zone_keeps_its_own_date_line() -> None:
    utc = compose(ROWS[0], SENDER, NOW).data
    kst = compose(ROWS[0] | {"created_at": ROWS[0]["created_at"].astimezone(KST)}, SENDER, NOW).data
    assert b"+0000" in utc.split(b"\nDate: ", 1)[1][:40]
    assert b"+0900" in kst.split(b"\nDate: ", 1)[1][:40]


@pytest.mark.parametrize("sender", ["smartcity-contest@gongmo.example", "Smart City Office <office@gongmo.example>"])
def test_other_senders_compose_to_the_reference_bytes(sender: str) -> None:
    _same_message(ROWS[1], sender)


@pytest.mark.parametrize(
    "change",
    [
        {"subject": "합격\r\nBcc: everyone@example.com"},
        {"to_addr": "a@b.example\nBcc: everyone@example.com"},
        {"message_id": "<x@y>\r\nX-Evil: 1"},
        {"notice": "selected\nX-Evil: 1"},
    ],
)
def test_a_header_with_a_line_break_is_refused_by_both(change: dict[str, Any]) -> None:
    with pytest.raises(HeaderInjection):
        compose(ROWS[0] | change, SENDER, NOW)
    with pytest.raises(HeaderInjection):
        reference(ROWS[0] | change, SENDER, NOW)


def test_a_sender_with_a_line_break_is_refused_by_both() -> None:
    with pytest.raises(HeaderInjection):
        compose(ROWS[0], "a@b.example\r\nBcc: x@y.example", NOW)
    with pytest.raises(HeaderInjection):
        reference(ROWS[0], "a@b.example\r\nBcc: x@y.example", NOW)


def test_a_message_composed_twice_is_the_same_bytes() -> None:
    assert compose(ROWS[3], SENDER, NOW) == compose(dict(ROWS[3]), SENDER, NOW + timedelta(hours=1))

"""Build the MIME message of an outbox row, after commit, never in a transaction.

Two compositions that give the same bytes:

- `reference`: the standard library's `email.mime` classes (a text+HTML Korean message in about a
  quarter of the time `EmailMessage` takes; LIBRARIES.md). It is the definition of what gongmo sends,
  and tests/notifications/test_compose.py holds the other one to it, byte for byte and through the
  standard library's parser.
- `compose`: the same message assembled from a skeleton, in about a twentieth of the time (0.56 ms
  -> ~25 us), so that composing no longer costs as much as sending. The part headers and the
  multipart frame are constant; what varies per message is filled in: the boundaries (derived from
  the Message-ID), the header lines (Subject folded and RFC 2047-encoded by the standard library's
  own policy, cached per subject; To, Message-ID and Date), and the base64 bodies (C speed; the
  .ics, the same for every applicant of a call in one language, cached). A row the skeleton does
  not cover (an empty body, a recipient with a display name or anything but a plain address) is
  composed by `reference`.

Both: the bodies are base64 (UTF-8 Korean in quoted-printable is three times the size and slower to
encode), and each multipart boundary is set from the Message-ID, so no random one is drawn and no
regular expression compiled per message to check it. The boundary starts with "=_", which neither
base64 nor quoted-printable can produce, so no body can contain it; a message composed twice (a retry,
a duplicate after a crash) is the same bytes. Header values are checked for CR/LF: a header injection
is refused, not sent.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email import encoders
from email.charset import BASE64, Charset
from email.header import Header
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any

UTF8 = Charset("utf-8")
UTF8.body_encoding = BASE64


class HeaderInjection(ValueError):
    """A header value with a line break: never sent."""


@dataclass(frozen=True)
class Envelope:
    sender: str
    recipients: tuple[str, ...]
    data: bytes
    message_id: str


def _clean(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise HeaderInjection(f"{name} contains a line break: {value[:60]!r}")
    return value


def _address(value: str) -> str:
    name, addr = parseaddr(_clean("address", value))
    if not name:
        return addr
    return formataddr((str(Header(name, "utf-8")), addr))


def _tag(message_id: str) -> str:
    return hashlib.blake2b(message_id.encode(), digest_size=12).hexdigest()


def reference(row: Mapping[str, Any], sender: str, now: datetime) -> Envelope:
    """One outbox row (subject, body_text, body_html, ics, to_addr, message_id), by `email.mime`."""
    tag = _tag(str(row["message_id"]))
    alternative = MIMEMultipart("alternative", boundary=f"=_alt_{tag}")
    alternative.attach(MIMEText(row["body_text"], "plain", UTF8))  # type: ignore[arg-type]
    alternative.attach(MIMEText(row["body_html"], "html", UTF8))  # type: ignore[arg-type]
    if row.get("ics"):
        message: MIMEMultipart = MIMEMultipart("mixed", boundary=f"=_mix_{tag}")
        message.attach(alternative)
        part = MIMEBase("text", "calendar", method="PUBLISH", charset="utf-8")
        part.set_payload(row["ics"].encode("utf-8"))
        encoders.encode_base64(part)
        part.add_header("Content-Disposition", "attachment", filename="gongmo.ics")
        message.attach(part)
    else:
        message = alternative
    subject = Header(_clean("subject", row["subject"]), "utf-8", header_name="Subject")
    message["Subject"] = subject  # type: ignore[assignment]  # a Header folds right after "Subject: "
    message["From"] = _address(sender)
    message["To"] = _address(row["to_addr"])
    message["Message-ID"] = _clean("Message-ID", row["message_id"])
    message["Date"] = format_datetime(row.get("created_at") or now)
    message["Auto-Submitted"] = "auto-generated"
    message["X-Gongmo-Notice"] = _clean("notice", row["notice"])
    recipient = parseaddr(row["to_addr"])[1]
    return Envelope(parseaddr(sender)[1], (recipient,), message.as_bytes(), row["message_id"])


# The skeleton: what email.mime writes around the varying pieces (compat32, "\n" line ends; the
# SMTP client turns them into CRLF on the wire, as it does for the reference's bytes).
_PART = b"MIME-Version: 1.0\nContent-Transfer-Encoding: base64\n\n"
_TEXT = b'Content-Type: text/plain; charset="utf-8"\n' + _PART
_HTML = b'Content-Type: text/html; charset="utf-8"\n' + _PART
_ICS = (
    b'Content-Type: text/calendar; method="PUBLISH"; charset="utf-8"\nMIME-Version: 1.0\n'
    b'Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename="gongmo.ics"\n\n'
)
_AUTO = b"Auto-Submitted: auto-generated\n"
# A plain address (dot-atoms around one @): parseaddr gives it back as it is, and no display name.
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*"
)
_MAX_LINE = 78  # compat32's max_line_length: a longer header line is folded


def _line(name: str, value: str) -> bytes:
    """A header line as the generator writes it: one short ASCII word as it is, the rest folded by
    the standard library's policy (the generator's own call)."""
    if value.isascii() and value.isprintable() and " " not in value and len(name) + len(value) + 2 <= _MAX_LINE:
        return f"{name}: {value}\n".encode("ascii")
    return compat32.fold_binary(name, value)


@functools.lru_cache(maxsize=256)
def _subject(subject: str) -> bytes:
    return compat32.fold_binary("Subject", Header(subject, "utf-8", header_name="Subject"))  # type: ignore[arg-type]


@functools.lru_cache(maxsize=16)
def _sender(sender: str) -> tuple[str, bytes]:
    return parseaddr(sender)[1], _line("From", _address(sender))


@functools.lru_cache(maxsize=64)
def _date(when: datetime, _offset: Any) -> bytes:  # keyed by the offset too: equal instants, other zones
    return _line("Date", format_datetime(when))


@functools.lru_cache(maxsize=16)
def _ics(ics: str) -> bytes:
    """The .ics in base64: the same for every applicant of one call in one language."""
    return base64.encodebytes(ics.encode("utf-8"))


def compose(row: Mapping[str, Any], sender: str, now: datetime) -> Envelope:
    """One outbox row, the same bytes as `reference`, from the skeleton."""
    message_id = _clean("Message-ID", row["message_id"])
    subject = _clean("subject", row["subject"])
    notice = _clean("notice", row["notice"])
    to_addr = _clean("address", row["to_addr"])
    text, html = row["body_text"], row["body_html"]
    if not (text and html and _PLAIN_ADDRESS.fullmatch(to_addr)):
        return reference(row, sender, now)
    envelope_sender, from_line = _sender(_clean("address", sender))
    when = row.get("created_at") or now
    tag = _tag(message_id).encode("ascii")
    alt = b"=_alt_" + tag
    headers = [
        _subject(subject),
        from_line,
        _line("To", to_addr),
        _line("Message-ID", message_id),
        _date(when, when.utcoffset()),
        _AUTO,
        _line("X-Gongmo-Notice", notice),
        b"\n",
    ]
    body = [
        b"--" + alt + b"\n" + _TEXT,
        base64.encodebytes(text.encode("utf-8")),
        b"\n--" + alt + b"\n" + _HTML,
        base64.encodebytes(html.encode("utf-8")),
        b"\n--" + alt + b"--\n",
    ]
    ics = row.get("ics")
    if ics:
        mix = b"=_mix_" + tag
        top = b'Content-Type: multipart/mixed; boundary="' + mix + b'"\nMIME-Version: 1.0\n'
        inner = b"--" + mix + b'\nContent-Type: multipart/alternative; boundary="' + alt + b'"\nMIME-Version: 1.0\n\n'
        end = [b"\n--" + mix + b"\n" + _ICS, _ics(ics), b"\n--" + mix + b"--\n"]
        data = b"".join([top, *headers, inner, *body, *end])
    else:
        top = b'Content-Type: multipart/alternative; boundary="' + alt + b'"\nMIME-Version: 1.0\n'
        data = b"".join([top, *headers, *body])
    return Envelope(envelope_sender, (to_addr,), data, message_id)

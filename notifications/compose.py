"""Build the MIME message of an outbox row, after commit, never in a transaction.

The legacy `email.mime` classes build a text+HTML Korean message in about a
quarter of the time `EmailMessage` takes (LIBRARIES.md); composition, not
SMTP, is what limits throughput. Two more savings, measured in bench.mail:
the bodies are base64 (UTF-8 Korean in quoted-printable is three times the
size and slower to encode), and each multipart boundary is set from the
Message-ID, so the generator does not draw a random one and compile a
regular expression per message to check it (a quarter of the time). The
boundary starts with "=_", which neither base64 nor quoted-printable can
produce, so no body can contain it; a message composed twice (a retry, a
duplicate after a crash) is the same bytes. Header values are checked for
CR/LF: a header injection is refused, not sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email import encoders
from email.charset import BASE64, Charset
from email.header import Header
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
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


def compose(row: Mapping[str, Any], sender: str, now: datetime) -> Envelope:
    """One outbox row (subject, body_text, body_html, ics, to_addr, message_id)."""
    tag = hashlib.blake2b(str(row["message_id"]).encode(), digest_size=12).hexdigest()
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

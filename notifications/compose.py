"""Build the MIME message of an outbox row, after commit, never in a transaction.

The legacy `email.mime` classes build a text+HTML Korean message in about a
quarter of the time `EmailMessage` takes (LIBRARIES.md); composition, not
SMTP, is what limits throughput. Header values are checked for CR/LF: a
header injection is refused, not sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email import encoders
from email.charset import QP, Charset
from email.header import Header
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any

UTF8_QP = Charset("utf-8")
UTF8_QP.body_encoding = QP


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
    alternative = MIMEMultipart("alternative")
    alternative.attach(MIMEText(row["body_text"], "plain", UTF8_QP))  # type: ignore[arg-type]
    alternative.attach(MIMEText(row["body_html"], "html", UTF8_QP))  # type: ignore[arg-type]
    if row.get("ics"):
        message: MIMEMultipart = MIMEMultipart("mixed")
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

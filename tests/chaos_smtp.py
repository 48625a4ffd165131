"""The chaos harness's SMTP server, in a process of its own (it outlives every daemon kill and does
not share the harness's GIL): tests/smtp_server.py's FaultySMTP, plus 421s, driven over stdin.

    python -m tests.chaos_smtp        # prints {"port": N}, then answers one JSON line per command

Commands, one per line: `refuse ADDR...` (550 at RCPT), `fail_data_every N` (451), `refuse_421 S M`
(421 to every S-th connection at EHLO and every M-th MAIL, then the connection is closed; 0 turns
either off), `down`, `up`, `stats`, `ids` (Message-ID -> times received),
`dups` (Message-ID -> when each copy arrived, for those that arrived more than once), `envelopes`
(Message-ID -> each distinct [envelope recipients, To header, decoded Subject] it arrived with),
`quit`. End of input quits.
"""

from __future__ import annotations

import asyncio
import collections
import email.parser
import email.policy
import json
import re
import sys
import time
from typing import Any

from tests.smtp_server import FaultySMTP, _Handler

# The header may be folded (a long Message-ID goes on the next line).
MESSAGE_ID = re.compile(rb"^message-id:\s*(<[^>]*>)", re.IGNORECASE | re.MULTILINE)


class _ChaosHandler(_Handler):
    """FaultySMTP's hooks, plus 421 to a share of connections (at EHLO) and of MAIL commands; the
    server then closes the connection, as a real one does after 421."""

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        owner: ChaosSMTP = self._owner  # type: ignore[assignment]
        refusal = owner._connection_refusal(session)
        if refusal is not None:
            asyncio.get_running_loop().call_later(0.05, server.transport.close)
            return [refusal]
        return await super().handle_EHLO(server, session, envelope, hostname, responses)

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]) -> str:
        owner: ChaosSMTP = self._owner  # type: ignore[assignment]
        refusal = owner._mail_refusal()
        if refusal is not None:
            asyncio.get_running_loop().call_later(0.05, server.transport.close)
            return refusal
        envelope.mail_from = address  # a MAIL hook must record the sender itself
        envelope.mail_options.extend(mail_options)
        return "250 OK"


HEADERS = email.parser.BytesHeaderParser(policy=email.policy.default)


class ChaosSMTP(FaultySMTP):
    """FaultySMTP with 421s and light bookkeeping: of what arrives only the Message-ID, the
    envelope recipients, the To header and the decoded Subject are kept (parsing thousands of
    whole messages would slow the server the daemons are timed against)."""

    def __init__(self) -> None:
        super().__init__()
        self._handler = _ChaosHandler(self)
        self._ids: collections.Counter[str] = collections.Counter()
        self._times: dict[str, list[float]] = {}  # Message-ID -> when each copy was stored (epoch s)
        self._envelopes: dict[str, list[list[Any]]] = {}  # Message-ID -> distinct [rcpts, To, Subject]
        self._refuse_session_every = 0
        self._refuse_mail_every = 0
        self._sessions = 0
        self._mails = 0
        self.refused_421 = 0

    def refuse_421(self, sessions_every: int, mails_every: int) -> None:
        with self._lock:
            self._refuse_session_every = sessions_every
            self._refuse_mail_every = mails_every

    def _connection_refusal(self, session: Any) -> str | None:
        with self._lock:
            if session.host_name is not None or not self._refuse_session_every:
                return None
            self._sessions += 1
            if self._sessions % self._refuse_session_every:
                return None
            self.refused_421 += 1
            return "421 4.3.2 chaos: too many connections, closing"

    def _mail_refusal(self) -> str | None:
        with self._lock:
            if not self._refuse_mail_every:
                return None
            self._mails += 1
            if self._mails % self._refuse_mail_every:
                return None
            self.refused_421 += 1
            return "421 4.4.5 chaos: system busy, closing"

    def _store(self, envelope: Any) -> None:
        head = bytes(envelope.original_content or b"").split(b"\r\n\r\n", 1)[0]
        match = MESSAGE_ID.search(head)
        message_id = match.group(1).decode("ascii", "replace") if match else "(no Message-ID)"
        try:
            headers = HEADERS.parsebytes(head + b"\r\n\r\n")
            to, subject = str(headers.get("To", "")), str(headers.get("Subject", ""))
        except Exception as exc:  # a header that does not parse is reported as such, not dropped
            to, subject = f"(unparsable: {type(exc).__name__})", f"(unparsable: {exc})"
        seen = [sorted(str(r) for r in envelope.rcpt_tos), to, subject]
        with self._lock:
            self._ids[message_id] += 1
            self._times.setdefault(message_id, []).append(time.time())
            copies = self._envelopes.setdefault(message_id, [])
            if seen not in copies:
                copies.append(seen)

    def ids(self) -> dict[str, int]:
        with self._lock:
            return dict(self._ids)

    def envelopes(self) -> dict[str, list[list[Any]]]:
        with self._lock:
            return {m: [list(c) for c in copies] for m, copies in self._envelopes.items()}

    def duplicates(self) -> dict[str, list[float]]:
        with self._lock:
            return {m: list(t) for m, t in self._times.items() if len(t) > 1}

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "received": sum(self._ids.values()),
                "connections": self.connections,
                "refused_421": self.refused_421,
                "data_failures": self.data_failures,
                "rcpt_refusals": self.rcpt_refusals,
            }


def serve(server: ChaosSMTP, lines: Any, out: Any) -> None:
    def reply(value: Any) -> None:
        out.write(json.dumps(value) + "\n")
        out.flush()

    for line in lines:
        command, *args = line.split()
        try:
            if command == "refuse":
                for addr in args:
                    server.refuse_recipient(addr)
                reply({"ok": True})
            elif command == "fail_data_every":
                server.fail_data_every(int(args[0]))
                reply({"ok": True})
            elif command == "refuse_421":
                server.refuse_421(int(args[0]), int(args[1]))
                reply({"ok": True})
            elif command == "down":
                server.down()
                reply({"ok": True})
            elif command == "up":
                server.up()
                reply({"ok": True})
            elif command == "stats":
                reply(server.stats())
            elif command == "ids":
                reply(server.ids())
            elif command == "envelopes":
                reply(server.envelopes())
            elif command == "dups":
                reply(server.duplicates())
            elif command == "quit":
                reply({"ok": True})
                return
            else:
                reply({"error": f"unknown command {command!r}"})
        except Exception as exc:  # told to the harness, which stops
            reply({"error": f"{type(exc).__name__}: {exc}"})


def main() -> int:
    server = ChaosSMTP()
    server.up()
    try:
        sys.stdout.write(json.dumps({"port": server.port}) + "\n")
        sys.stdout.flush()
        serve(server, sys.stdin, sys.stdout)
    finally:
        server.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())

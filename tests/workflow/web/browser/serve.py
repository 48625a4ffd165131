"""The console served for real (uvicorn on a free port of 127.0.0.1, in a thread) and Debian's
Chromium launched by path, for the browser tests and docs/screenshots.py.

Playwright's own browser download cannot be reached from these machines: the browser is the
`chromium` package (/usr/bin/chromium; `.ci/run` installs it with fonts-noto-cjk). Without the
background-networking flags Chromium misbehaves on the closed network.
"""

from __future__ import annotations

import asyncio
import email
import email.message
import email.policy
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect

from gongmo.notifications.transport import MaildirTransport
from gongmo.workflow.core import sessions
from gongmo.workflow.core.db import read
from gongmo.workflow.engine.app import App
from gongmo.workflow.outbox import dispatch as mailer
from gongmo.workflow.runtime.daemon import ApiServer
from gongmo.workflow.web import create_app
from gongmo.workflow.web.auth import COOKIE

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OFFICE_EMAIL = "office-lee@molit.go.kr"
HOME = {"admin": "/office", "evaluator": "/evaluator", "applicant": "/applicant"}  # where a link lands
START_TIMEOUT_S = 20.0


def launch(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless."""
    if not CHROMIUM.exists():
        raise FileNotFoundError(f"{CHROMIUM} is missing: apt-get install chromium fonts-noto-cjk (.ci/run does)")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)


def staff(app: App, email: str = OFFICE_EMAIL) -> None:
    """The staff account of `email` (an admin session resolves only while it exists), added if missing."""
    with read(app.db) as conn:
        known = sessions.active_staff(conn, email) is not None
    if not known:
        sessions.add_staff(app, email, created_by="test")


def deliver_to_maildir(app: App, path: Path) -> None:
    """Deliver every notice due to a Maildir at `path`, as the embedded default (and the demo) does.
    In a thread of its own: Playwright's sync API keeps this thread's event loop."""

    async def send() -> None:
        transport = MaildirTransport(path)
        try:
            await mailer.Mailer(app, transport, "gongmo-test").deliver_due()
        finally:
            await transport.close()

    failed: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(send())
        except BaseException as exc:  # re-raised in the test's thread
            failed.append(exc)

    thread = threading.Thread(target=run, name="maildir")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]


def mails_to(path: Path, address: str) -> list[email.message.EmailMessage]:
    """The messages of the Maildir at `path` addressed to `address`, oldest first."""
    found = []
    for file in sorted((path / "new").iterdir(), key=lambda f: f.stat().st_mtime_ns):
        message = email.message_from_bytes(file.read_bytes(), policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        if address in str(message["To"]):
            found.append(message)
    return found


class Console:
    """gongmo's app (API and pages, web.create_app) under uvicorn in a background thread.

    The requests run in the server's threads against the same App (and its FixedClock) the test
    holds, so a test moves the clock between clicks and reads the database directly."""

    def __init__(self, app: App) -> None:
        self.app = app
        config = uvicorn.Config(
            create_app(app), host="127.0.0.1", port=0, lifespan="off", access_log=False, log_level="warning"
        )
        self.server = ApiServer(config)
        self.thread = threading.Thread(target=self.server.run, name="console", daemon=True)

    def __enter__(self) -> Console:
        self.thread.start()
        started = time.monotonic()
        # waiting for the server thread to listen (real time: the app's clock is not involved)
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() - started > START_TIMEOUT_S:
                raise RuntimeError("the console did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=START_TIMEOUT_S)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def sign_in(self, context: BrowserContext, role: str = "admin", subject: str = OFFICE_EMAIL) -> str:
        """A session opened by the service (as `gongmo console link` would lead to), its cookie set in
        the browser context; returns the raw session id."""
        if role == "admin":
            staff(self.app, subject)
        raw = sessions.open_session(self.app, role, subject, client="browser-test")
        context.add_cookies([{"name": COOKIE, "value": raw, "url": self.url, "httpOnly": True, "sameSite": "Lax"}])
        return raw


@dataclass
class Person:
    """One person at its own browser (a context: its own cookies), signed in by its mailed link."""

    email: str
    role: str
    context: BrowserContext
    page: Page


@dataclass
class Cast:
    """Everyone of a contest in one Chromium, each signing in by the link mailed to it: the Maildir
    the outbox delivers to is read as the person would read its mail (conftest's `cast` fixture)."""

    chromium: Browser
    console: Console
    maildir: Path
    timeout_ms: float = 10_000
    people: dict[str, Person] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)  # links already followed (a link works once)

    def person(self, email: str, role: str, locale: str = "ko-KR") -> Person:
        if email not in self.people:
            ctx = self.chromium.new_context(locale=locale, viewport={"width": 1280, "height": 900})
            ctx.set_default_timeout(self.timeout_ms)
            self.people[email] = Person(email, role, ctx, ctx.new_page())
        return self.people[email]

    def sign_in(self, people: Sequence[Person]) -> None:
        """Each asks for a link on /signin; the outbox delivers to the Maildir (as the embedded default
        does); each opens its newest link and presses the button, landing on its role's home."""
        url = self.console.url
        for p in people:
            p.page.goto(url + "/signin")
            p.page.fill("#signin-email", p.email)
            p.page.locator("form.signin button[type=submit]").click()
            expect(p.page.locator("main [role=status]")).to_be_visible()
        deliver_to_maildir(self.console.app, self.maildir)
        for p in people:
            link = self.link_for(p.email)
            address = urlsplit(link)
            p.page.goto(url + address.path + (f"?{address.query}" if address.query else ""))
            p.page.locator("form.signin button[type=submit]").click()
            p.page.wait_for_url(url + HOME[p.role])

    def link_for(self, email: str) -> str:
        fresh = []
        for mail in mails_to(self.maildir, email):
            body = mail.get_body(preferencelist=("plain",))
            assert body is not None
            fresh += [
                link for link in re.findall(r"https?://\S+/signin/\S+", body.get_content()) if link not in self.used
            ]
        assert len(fresh) == 1, f"{email}: {len(fresh)} unused sign-in links in the Maildir"
        self.used.add(fresh[0])
        return fresh[0]

    def close(self) -> None:
        for p in self.people.values():
            p.context.close()


def dry_run(page: Page, track_key: str) -> dict[str, str]:
    """The office opens the track's ranking page (from the track's page): its dry run's decisions
    by receipt number."""
    page.get_by_role("link", name="순위·선정").first.click()
    page.wait_for_url(f"**/office/tracks/{track_key}/ranking")
    dry = page.locator("tr[data-decision]")
    return dict(
        zip(
            dry.evaluate_all("rows => rows.map(r => r.dataset.receipt)"),
            dry.evaluate_all("rows => rows.map(r => r.dataset.decision)"),
            strict=True,
        )
    )

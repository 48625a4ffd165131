"""Isolation in the portals (issue 24): two applicants and two evaluators signed in at the same time,
each at its own browser (a context, signed in through its mailed link). Every link, frame and form
of each person's pages is collected by walking its portal from its home; then each is requested
with every other person's session: 403 or 404, never 200 with the other's data. A page both reach
(the portal's home, a language switch, an application both evaluators are assigned to) must show
the other none of the owner's data. Each form is sent too, with the other's own CSRF token: refused,
and nothing changes.

The written evaluation's window (2024-06-11 14:00): 세종 in evaluation and 창원 disqualified, both
with documents and sent notices; 김교수 assigned to all ten, 정위원 to the eight outside 경기 (so
시흥 and 화성 are 김교수's alone, 세종 is both's)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest
from playwright.sync_api import APIResponse

from gongmo.workflow.core.models import DOCUMENT, EVALUATOR, EVENT
from tests.workflow import contest_2024 as sc
from tests.workflow.api.conftest import CHANGWON, JUNG, KIM, SEJONG, World
from tests.workflow.web.browser.serve import Cast, Console, Person, deliver_to_maildir
from tests.workflow.web.browser.test_whole_contest import CONTACT, applicant

PAGES_MAX = 60  # a portal walk longer than this is a loop in the links


class Links(HTMLParser):
    """The links (a href), frames (iframe src) and forms (action, method, hidden fields) of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.forms: list[tuple[str, str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])
        elif tag == "iframe" and a.get("src"):
            self.hrefs.append(a["src"])
        elif tag == "form":
            self.forms.append((a.get("action", ""), a.get("method", "get").lower(), {}))
        elif tag == "input" and a.get("type") == "hidden" and self.forms and a.get("name"):
            self.forms[-1][2][a["name"]] = a.get("value", "")


@dataclass
class Reach:
    """What one person's pages lead to: GET addresses (path and query) and POST forms."""

    person: Person
    markers: list[str]
    gets: dict[str, int] = field(default_factory=dict)  # address -> status for its owner
    posts: dict[str, dict[str, str]] = field(default_factory=dict)  # action -> hidden fields
    csrf: str = ""
    shown: set[str] = field(default_factory=set)  # its markers its own pages show


def walk(c: Console, p: Person, markers: list[str]) -> Reach:
    """From the person's home, every address its pages link to (followed while under its portal)."""
    home = "/applicant" if p.role == "applicant" else "/evaluator"
    reach = Reach(p, markers)
    todo = [home]
    while todo:
        address = todo.pop()
        if address in reach.gets:
            continue
        answer = p.context.request.get(c.url + address, max_redirects=0)
        reach.gets[address] = answer.status
        assert answer.status == 200, f"{p.email}: its own {address} answered {answer.status}"
        if not answer.headers.get("content-type", "").startswith("text/html"):
            continue
        assert len(reach.gets) <= PAGES_MAX, f"{p.email}: more than {PAGES_MAX} addresses"
        reach.shown |= set(leaked(answer, markers))
        found = Links()
        found.feed(answer.text())
        for href in found.hrefs:
            target = local(c, urljoin(c.url + address, href))
            if not target or target.startswith("/static/"):
                continue
            if target.startswith(home) and "lang=" not in target:
                todo.append(target)  # walked on: a page of its portal
            else:
                reach.gets.setdefault(target, 0)  # collected, not walked: a language switch, another room
        for action, method, hidden in found.forms:
            if method == "post":
                reach.posts[local(c, urljoin(c.url + address, action)) or action] = hidden
                reach.csrf = hidden.get("csrf", reach.csrf)
    return reach


def local(c: Console, url: str) -> str:
    """A link's path and query on the console (its fragment dropped); '' for another site."""
    url = urldefrag(url)[0]
    if not url.startswith(c.url + "/"):
        return ""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def leaked(answer: APIResponse, markers: list[str]) -> list[str]:
    """Which of `markers` the answer's text shows (a file's bytes are not searched)."""
    if not answer.headers.get("content-type", "").startswith(("text/", "application/json")):
        return []
    body = answer.text()
    return [m for m in markers if m in body]


@pytest.mark.slow
def test_two_applicants_and_two_evaluators_reach_nothing_of_each_other(
    written: World, console: Callable[[World], Console], cast: Callable[[Console], Cast], tmp_path: Path
) -> None:
    w = written
    c = console(w)
    deliver_to_maildir(w.app, tmp_path / "notices")  # their notices sent: listed and readable in the portal
    people = cast(c)
    govs = {code: applicant(people, code) for code in (SEJONG, CHANGWON)}
    evaluators = {email: people.person(email, "evaluator") for email in (KIM, JUNG)}
    people.sign_in([*govs.values(), *evaluators.values()])

    names = {e["email"]: e["name"] for e in w.rows(EVALUATOR)}
    apps = sc.apps(w.app)
    marks: dict[str, list[str]] = {}
    for code in govs:
        row = apps[code]
        docs = w.rows(DOCUMENT, DOCUMENT.c.application_id == row["id"])
        marks[CONTACT[code]] = [code, CONTACT[code], str(row["receipt_no"]), *(d["sha256"] for d in docs)]
    for email in evaluators:
        marks[email] = [email, names[email]]
    reaches = [walk(c, p, marks[p.email]) for p in people.people.values()]
    for r in reaches:  # each walk saw its owner's identity, an applicant its receipt (or nothing below could fail)
        mine = r.markers[:1] + (r.markers[2:3] if r.person.role == "applicant" else [])
        assert set(mine) <= r.shown, f"{r.person.email}: its own pages never show {mine}"
    kim = next(r for r in reaches if r.person.email == KIM)
    assert f"/evaluator/applications/{w.id('41390')}" in kim.gets, "김교수 reaches 시흥 (정위원 does not)"
    assert sum("/documents/" in a for r in reaches for a in r.gets) >= 4, "documents are among the links"

    before = w.footprint()
    last_event = max(e["id"] for e in w.rows(EVENT))
    refused: list[str] = []
    for owner in reaches:
        for other in reaches:
            if other is owner:
                continue
            private = [m for m in owner.markers if m not in other.markers]
            for address in owner.gets:
                answer = other.person.context.request.get(c.url + address, max_redirects=0)
                who = f"{other.person.email} at {owner.person.email}'s {address}"
                if address in other.gets:  # both reach it: the other sees its own, none of the owner's
                    assert answer.status == 200, f"{who}: {answer.status}"
                else:
                    assert answer.status in (403, 404), f"{who}: {answer.status}"
                    refused.append(address)
                assert not leaked(answer, private), f"{who}: shows {leaked(answer, private)}"
            for action, hidden in owner.posts.items():
                if action in other.posts:
                    continue  # its own form too (signing out, the sheet of an application both score)
                data: dict[str, str | float | bool] = {**hidden, "csrf": other.csrf, "reason": "-", "grounds": "-"}
                answer = other.person.context.request.post(c.url + action, form=data, max_redirects=0)
                assert answer.status in (403, 404), f"{other.person.email} POST {action}: {answer.status}"
                refused.append(action)
    after = w.footprint()
    unchanged = after | {"counts": after["counts"] | {"event": before["counts"]["event"]}}
    assert unchanged == before, "a request of one with another's session changed something"
    # the only new events: downloads the other may make (a document of an application both evaluate)
    for e in w.rows(EVENT, EVENT.c.id > last_event):
        assert e["kind"] == "document_downloaded", e
        d = json.loads(e["detail"])
        address = f"/evaluator/applications/{e['application_id']}/documents/{d['kind']}?version={d['version']}"
        assert address in next(r for r in reaches if r.person.email == e["actor"]).gets, e
    assert len(refused) >= 20, f"only {len(refused)} of one's addresses and forms were tried by the others"
    print(
        f"\n{sum(len(r.gets) for r in reaches)} addresses and {sum(len(r.posts) for r in reaches)} forms reached;"
        f" {len(refused)} requests with another's session refused"
    )

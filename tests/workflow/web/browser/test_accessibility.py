"""axe-core on every console page, in Korean and in English: no violation of impact serious or
critical, and every form field has a label.

"Every page" is every GET route of the console's routers (web/server.py ROUTERS), read from the
app itself, so a page added later is checked without editing this file; a route whose path
parameter this file cannot fill fails (add it to `fill`). Files and a notice's own HTML body are
not pages (NOT_PAGES). The pages are opened on one world of the 2024 scenario: every presentation
sheet entered, the selection day (ranking, dry run and confirmation form), plus the pages that
need the confirmed selection (release: notices held under embargo) on a second world.

Each page's result is appended to the summary file (AXE_SUMMARY, default under the system's
temporary folder) and the module prints the totals at its end (pytest -s shows them):
    python -m pytest tests/workflow/web/browser/test_accessibility.py -n0 -s
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser

from gongmo.workflow.core import sessions
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.models import OUTBOX
from gongmo.workflow.runtime.wiring import open_app
from gongmo.workflow.stages import selection
from gongmo.workflow.web import server
from tests.conftest import CONFIG, kst
from tests.workflow import contest_2024 as sc
from tests.workflow.api.conftest import SEJONG, STAGE_TIME, TRACK_KEY, World, copy_sqlite
from tests.workflow.web.browser.conftest import TIMEOUT_MS
from tests.workflow.web.browser.serve import OFFICE_EMAIL, Console, staff

SUMMARY = Path(os.environ.get("AXE_SUMMARY", Path(tempfile.gettempdir()) / "gongmo-axe.jsonl"))
LANGUAGES = ("ko", "en")
BLOCKING = ("serious", "critical")
# GET routes of the routers that answer something other than a console page.
NOT_PAGES = {
    "/office/applications/{application_id}/documents/{kind}",  # a file download
    "/office/applications/{application_id}/kickoff/{round_}/file",  # an implementation plan's file
    "/office/outbox/{outbox_id}/body.html",  # a notice's own HTML as mailed, shown in a sandboxed frame
}
# Pages that need the confirmed selection (the others are opened before it, where they offer more).
AFTER_SELECTION = {"/office/tracks/{key}/release"}
# Pages shown without a session.
PUBLIC = ("/signin",)
# An error page is a page too (an unknown application: 404 with the one line and a way back).
EXTRA = {"/office/applications/999999": 404}


def page_routes() -> list[str]:
    paths = []
    for router in server.ROUTERS:
        for route in router.routes:
            path = getattr(route, "path", "")
            if "GET" in (getattr(route, "methods", None) or ()) and path not in NOT_PAGES:
                paths.append(path)
    return sorted(set(paths))


def fill(route: str, w: World) -> str:
    """The route with its path parameters filled from the world."""
    values: dict[str, Any] = {}
    for name in route.split("{")[1:]:
        param = name.split("}")[0]
        if param in ("key", "track", "track_key"):
            values[param] = TRACK_KEY
        elif param in ("application_id", "id"):
            values[param] = w.id(SEJONG)
        elif param == "outbox_id":
            rows = w.rows(OUTBOX, OUTBOX.c.notice == "receipt_confirmation")
            values[param] = rows[0]["id"]
        elif param == "name" and "/actions/" in route:
            values[param] = "assign"  # the bulk action allowed in evaluation (its preview: 10 applications)
        elif param == "token":
            staff(w.app, OFFICE_EMAIL)
            values[param] = sessions.staff_link(w.app, OFFICE_EMAIL)
        else:
            raise AssertionError(f"{route}: test_accessibility.fill does not know how to fill {{{param}}}: add it")
    return route.format(**values)


def _world(templates: Any, where: Path, decided: bool) -> World:
    path = where / "gongmo.db"
    copy_sqlite(templates("presentation"), path)
    clock = FixedClock(kst(STAGE_TIME["presentation"]))
    w = World(open_app(CONFIG, clock, database_url=f"sqlite:///{path}"), clock)
    if decided:
        selection.select(w.app, TRACK_KEY, sc.OFFICE, confirm=True)
    return w


@pytest.fixture(scope="module")
def consoles(templates: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[bool, tuple[World, Console]]]:
    """decided -> a world before (False) and after (True) the confirmed selection, served."""
    worlds = {d: _world(templates, tmp_path_factory.mktemp(f"axe-{d}"), d) for d in (False, True)}
    running = {d: (w, Console(w.app).__enter__()) for d, w in worlds.items()}
    yield running
    for w, c in running.values():
        c.__exit__(None, None, None)
        w.close()
    _print_summary()


PAGES = [*page_routes(), *EXTRA]


@pytest.mark.parametrize("width", (1280, 390))
@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("route", PAGES)
def test_the_page_has_no_serious_accessibility_violation_and_labels_every_field(
    route: str, lang: str, width: int, consoles: dict[bool, tuple[World, Console]], chromium: Browser
) -> None:
    w, c = consoles[route in AFTER_SELECTION]
    path = fill(route, w) if "{" in route else route
    context = chromium.new_context(viewport={"width": width, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        if not route.startswith(PUBLIC):
            c.sign_in(context)
        page = context.new_page()
        answer = page.goto(f"{c.url}{path}?lang={lang}")
        assert answer is not None and answer.status == EXTRA.get(route, 200), (path, answer and answer.status)
        assert page.evaluate("document.documentElement.lang") == lang
        results = Axe().run(page)
        unlabelled = page.evaluate(UNLABELLED)
    finally:
        context.close()
    violations = results.response["violations"]
    _record(route, lang, width, violations, unlabelled)
    blocking = [
        f"{v['impact']} {v['id']}: {v['help']} ({len(v['nodes'])}x, e.g. {v['nodes'][0]['html'][:160]})"
        for v in violations
        if v["impact"] in BLOCKING
    ]
    assert not blocking, f"{path}?lang={lang} at {width} px:\n" + "\n".join(blocking)
    assert not unlabelled, f"{path}?lang={lang}: form fields without a label: {unlabelled}"


# Every input, select and textarea a person fills in (not hidden, not a button) has a <label>, or
# an aria-label / aria-labelledby naming it.
UNLABELLED = """() => Array.from(document.querySelectorAll('input, select, textarea'))
  .filter(e => !['hidden', 'submit', 'button', 'reset', 'image'].includes((e.type || '').toLowerCase()))
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby'))
  .map(e => e.outerHTML.slice(0, 160))"""


def _record(route: str, lang: str, width: int, violations: list[dict[str, Any]], unlabelled: list[str]) -> None:
    line = {
        "page": route,
        "lang": lang,
        "width": width,
        "violations": {v["id"]: v["impact"] for v in violations},
        "by_impact": dict(Counter(str(v["impact"]) for v in violations)),
        "unlabelled": len(unlabelled),
    }
    with SUMMARY.open("a", encoding="utf-8") as out:
        out.write(json.dumps(line, ensure_ascii=False) + "\n")


def _print_summary() -> None:
    if not SUMMARY.exists():
        return
    lines = [json.loads(line) for line in SUMMARY.read_text(encoding="utf-8").splitlines() if line.strip()]
    latest = {(r["page"], r["lang"], r.get("width", 1280)): r for r in lines}  # the last run of each page view
    impacts: Counter[str] = Counter()
    for r in latest.values():
        impacts.update(r["by_impact"])
    pages = len({p for p, _, _ in latest})
    print(f"\naxe: {len(latest)} page views ({pages} pages x ko/en x 1280/390 px), violations by impact:")
    print("  " + (", ".join(f"{k} {impacts.get(k, 0)}" for k in ("critical", "serious", "moderate", "minor"))))
    for (p, lang, width), r in sorted(latest.items()):
        if r["violations"] or r["unlabelled"]:
            print(f"  {p} [{lang}, {width} px]: {r['violations']} unlabelled {r['unlabelled']}")


def test_the_check_finds_a_field_without_a_label_on_a_console_page(
    consoles: dict[bool, tuple[World, Console]], chromium: Browser
) -> None:
    """axe runs inside the console's CSP, and both checks see a field added without a label."""
    _, c = consoles[False]
    context = chromium.new_context()
    try:
        c.sign_in(context)
        page = context.new_page()
        page.goto(f"{c.url}/office")
        page.evaluate(
            "() => { const i = document.createElement('input'); i.name = 'x';"
            " document.querySelector('main').append(i); }"
        )
        results = Axe().run(page)
        unlabelled = page.evaluate(UNLABELLED)
    finally:
        context.close()
    assert "label" in {v["id"] for v in results.response["violations"] if v["impact"] in BLOCKING}
    assert unlabelled == ['<input name="x">']

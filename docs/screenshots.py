"""Screenshots of the office console (PNG, 1280 and 390 px wide) into docs/screenshots/.

Builds the 2024 strong-and-small scenario of the tests (every score sheet entered, the morning of
the selection day) on a throwaway SQLite database, serves the console on a free port of
127.0.0.1, signs in as office staff, and takes a viewport screenshot of each main page in Korean;
then confirms the selection through the service and takes the release page, releases the results
and takes the applicant's page of 세종 (its explained result, the kickoff form). The evaluator's
score sheet comes from a second database in the written window, its fields typed by 김교수 (the
live total shown). Needs Debian's
Chromium (/usr/bin/chromium) and fonts-noto-cjk, as the browser tests do.

    .venv/bin/python docs/screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Browser, sync_playwright  # noqa: E402

from gongmo.workflow.core.clock import FixedClock  # noqa: E402
from gongmo.workflow.outbox import office as outbox_office  # noqa: E402
from gongmo.workflow.stages import selection  # noqa: E402
from tests.conftest import kst, make_app  # noqa: E402
from tests.workflow import contest_2024 as sc  # noqa: E402
from tests.workflow.api.conftest import KIM, POINTS, SEJONG, STAGE_TIME, TRACK_KEY, drive  # noqa: E402
from tests.workflow.web.browser.serve import OFFICE_EMAIL, Console, launch  # noqa: E402

WIDTHS = ((1280, 860), (390, 844))  # (width, height) of the viewport: desktop, phone


def pages(application_id: int) -> dict[str, str]:
    """name -> path of the pages shown before the selection is confirmed."""
    track = f"/office/tracks/{TRACK_KEY}"
    return {
        "contests": "/office",
        "track": track,
        "application": f"/office/applications/{application_id}",
        "committee": f"{track}/committee",
        "ranking": f"{track}/ranking",
        "deadlines": "/office/deadlines",
        "outbox": "/office/outbox",
        "health": "/office/health",
    }


def shoot(
    browser: Browser, console: Console, shots: dict[str, str], out: Path, role: str = "admin", who: str = OFFICE_EMAIL
) -> list[Path]:
    written = []
    for width, height in WIDTHS:
        context = browser.new_context(viewport={"width": width, "height": height}, locale="ko-KR")
        try:
            console.sign_in(context, role, who)
            page = context.new_page()
            for name, path in shots.items():
                answer = page.goto(console.url + path)
                if answer is None or answer.status != 200:
                    raise SystemExit(f"{path}: answered {answer and answer.status}")
                target = out / f"{name}-{width}.png"
                page.screenshot(path=str(target))
                written.append(target)
        finally:
            context.close()
    return written


def score_sheet(browser: Browser, tmp: Path, out: Path) -> list[Path]:
    """김교수's written sheet of 세종 in the written window, its points typed (the total kept live)."""
    clock = FixedClock(kst("2024-03-29 10:00"))
    app = make_app(f"sqlite:///{tmp / 'written.db'}", clock)
    written = []
    try:
        (tmp / "written").mkdir()
        drive(app, clock, "written", tmp / "written")
        clock.set(kst(STAGE_TIME["written"]))
        path = f"/evaluator/applications/{sc.application(app, SEJONG)['id']}#sheet-written"
        with Console(app) as console:
            for width, height in WIDTHS:
                context = browser.new_context(viewport={"width": width, "height": height}, locale="ko-KR")
                try:
                    console.sign_in(context, "evaluator", KIM)
                    page = context.new_page()
                    page.goto(console.url + path)
                    for criterion, points in POINTS.items():
                        page.fill(f"#f-written-{criterion}", points)
                    page.locator("#sheet-written").scroll_into_view_if_needed()
                    target = out / f"score-sheet-{width}.png"
                    page.screenshot(path=str(target))
                    written.append(target)
                finally:
                    context.close()
    finally:
        app.db.dispose()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gongmo-screenshots-") as tmp:
        where = Path(tmp)
        clock = FixedClock(kst("2024-03-29 10:00"))
        app = make_app(f"sqlite:///{where / 'gongmo.db'}", clock)
        try:
            drive(app, clock, "presentation", where)
            clock.set(kst(STAGE_TIME["presentation"]))  # the selection day, before the confirmation
            application_id = int(sc.application(app, SEJONG)["id"])
            written: list[Path] = []
            with sync_playwright() as playwright, Console(app) as console:
                browser = launch(playwright)
                try:
                    written += shoot(browser, console, pages(application_id), out)
                    selection.select(app, TRACK_KEY, sc.OFFICE, confirm=True)
                    written += shoot(browser, console, {"release": f"/office/tracks/{TRACK_KEY}/release"}, out)
                    outbox_office.release(app, TRACK_KEY, "results")
                    mine = {"applicant-application": f"/applicant/applications/{application_id}"}
                    written += shoot(browser, console, mine, out, "applicant", SEJONG)
                    written += score_sheet(browser, where, out)
                finally:
                    browser.close()
        finally:
            app.db.dispose()
    for path in written:
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}  {path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

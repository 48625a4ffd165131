"""The pages scenario (bench/pages.py): its application is made through the services (a valid hash
chain, TIMELINE_ROWS rows), and a small run measures the three pairs, page next to its JSON."""

from __future__ import annotations

from bench import pages
from bench.db import Backend, database, open_bench_app
from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.states.lifecycle import Role
from gongmo.workflow.core import tokens
from gongmo.workflow.core.db import read
from gongmo.workflow.engine import audit


def test_the_long_timeline_is_made_through_the_services_and_its_chain_verifies() -> None:
    with database(Backend("sqlite")) as target:
        app = open_bench_app(target)
        try:
            application_id = pages.story(app)
            office = tokens.Principal(0, Role.ADMIN, "bench-office")
            assert pages.rows_of(app, office, application_id) == pages.TIMELINE_ROWS
            with read(app.db) as conn:
                report = audit.verify(conn, TABLE)
                shown = pages.timeline.of_application(app, conn, office, application_id)
        finally:
            app.db.dispose()
    assert report.clean, report.findings[:3]
    assert shown["state"] == "written_evaluation"
    sources = {r["source"] for r in shown["timeline"]}
    assert sources == {"audit", "event", "notice"}
    assert [r["trigger"] for r in shown["timeline"] if r["source"] == "audit"] == [
        "invite",
        "submit",
        "start_review",
        "pass_review",
    ]


def test_a_small_run_measures_each_page_next_to_its_json() -> None:
    rows = pages.run(Backend("sqlite"), 300)
    labels = [r.scenario for r in rows]
    assert labels == [
        f"{what}: page / JSON, {q}"
        for what in ("track page, first page", "track page, deep", "application page, 200 timeline rows")
        for q in ("p50", "p99")
    ]
    for r in rows:
        assert r.db == "sqlite" and r.n == 300 and r.target == "≤ 2x"
        assert r.gongmo > 0 and r.baseline is not None and r.baseline > 0
        assert r.ratio is not None and abs(r.ratio - r.gongmo / r.baseline) < 0.01 * r.ratio + 0.01
        assert r.extra["requests"] == pages.SMALL_REQUESTS
    assert rows[2].extra["page"].endswith(f"?after={rows[2].extra['json'].split('after=')[1]}")

"""The 2024 strong-and-small scenario: 12 local governments, 5 evaluators,
and sheets built so that the ranking can be checked by hand.

Each applicant has a target total per part; each evaluator a bias added to
it. With five evaluators the trimmed mean drops the +4 and the -3 biases, so
the written score is the target plus the mean of (+2, -1, 0) = +0.33; an
application with four evaluators (one in conflict) is a plain mean.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from gongmo.states.lifecycle import Role
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import APPLICANT, APPLICATION, DEADLINE, OUTBOX
from gongmo.workflow.core.models import TRACK as TRACK_TABLE
from gongmo.workflow.deadlines import changes as calendars
from gongmo.workflow.deadlines.ticker import Ticker
from gongmo.workflow.engine.app import App
from gongmo.workflow.stages import applicants, committee
from tests.conftest import kst
from tests.workflow import plans

TRACK = "strong-small-2024"

APPLICANTS_CSV = """code,name,kind,population,contact_name,email,language
36110,세종특별자치시,special_self_governing_city,386525,박지호,smart@sejong.example,ko
41390,시흥시,city,517000,오세린,smart@siheung.example,ko
43110,청주시,city,850000,정하늘,smart@cheongju.example,ko
44130,천안시,city,655000,윤도현,smart@cheonan.example,en
41590,화성시,city,950000,한지민,smart@hwaseong.example,ko
47190,구미시,city,405000,서준영,smart@gumi.example,ko
48120,창원시,city,1010000,강민서,smart@changwon.example,ko
52110,전주시,city,640000,임서윤,smart@jeonju.example,ko
51110,춘천시,city,286000,조예준,smart@chuncheon.example,ko
26350,해운대구,district,380000,백지아,smart@haeundae.example,ko
46130,여수시,city,270000,송유나,smart@yeosu.example,ko
41110,수원시,city,1190987,최민준,smart@suwon.example,ko
"""

EVALUATORS_CSV = """name,email,affiliation,region,home_code,conflicts
김교수,kim@univ-seoul.example,서울대학교 도시공학과,서울,,
이박사,lee@kict.example,한국건설기술연구원,대전,,51110
박연구위원,park@busan-inst.example,부산연구원,부산,,
최교수,choi@chonnam.example,전남대학교 건축학부,광주,,
정위원,jung@gri.example,경기연구원,경기도,,
"""

EVALUATORS = [
    "kim@univ-seoul.example",
    "lee@kict.example",
    "park@busan-inst.example",
    "choi@chonnam.example",
    "jung@gri.example",
]
# Bias added to the target by each evaluator (same order).
WRITTEN_BIAS = [Decimal(2), Decimal(-1), Decimal(0), Decimal(4), Decimal(-3)]
PRESENTATION_BIAS = [Decimal(1), Decimal(0), Decimal(-2), Decimal(5), Decimal(-4)]

# code -> (written target, presentation target)
TARGETS: dict[str, tuple[int, int]] = {
    "36110": (90, 91),  # 세종
    "41390": (88, 88),  # 시흥 (경기: jung recuses)
    "43110": (85, 85),  # 청주, tied with 천안 on every part
    "44130": (85, 85),  # 천안, wins the tie on feasibility
    "41590": (82, 83),  # 화성 (경기: jung recuses)
    "47190": (80, 80),  # 구미
    "48120": (78, 78),  # 창원 (reinstated after its objection)
    "52110": (76, 76),  # 전주
    "51110": (74, 74),  # 춘천 (lee declared a conflict)
    "26350": (72, 72),  # 해운대구 (부산: park recuses)
    "46130": (64, 66),  # 여수: below the minimum of 70
}
CRITERIA = {
    "feasibility": Decimal(30),
    "innovation": Decimal(20),
    "participation": Decimal(20),
    "budget": Decimal(15),
    "effect": Decimal(15),
}
# National share requested (won); local = national (1:1).
NATIONAL = {code: 8_000_000_000 for code in TARGETS} | {"36110": 7_500_000_000, "47190": 6_000_000_000}


def sheet(total: Decimal, code: str) -> dict[str, Decimal]:
    """Points per criterion adding up to `total`, in proportion to each
    criterion's weight (halves), the rest on 'effect'; 천안 moves one point
    from innovation to feasibility (same total, better feasibility)."""
    points = {k: (total * v / 100 * 2).quantize(Decimal(1)) / 2 for k, v in CRITERIA.items() if k != "effect"}
    points["effect"] = total - sum(points.values())
    if code == "44130":
        points["feasibility"] += 1
        points["innovation"] -= 1
    assert all(0 <= p <= CRITERIA[k] for k, p in points.items()), (code, points)
    return points


def conflicted(code: str, evaluator: str) -> bool:
    region = {"kim": "11", "lee": "30", "park": "26", "choi": "29", "jung": "41"}[evaluator.split("@")[0]]
    return code[:2] == region or (evaluator.startswith("lee") and code == "51110")


def expected(code: str, part: str) -> Decimal:
    """The part score by hand: trimmed mean of five, or the plain mean of four."""
    target = Decimal(TARGETS[code][0 if part == "written" else 1])
    bias = WRITTEN_BIAS if part == "written" else PRESENTATION_BIAS
    mine = [b for e, b in zip(EVALUATORS, bias, strict=True) if not conflicted(code, e)]
    if len(mine) >= 5:
        mine = sorted(mine)[1:-1]
    return (target + sum(mine, Decimal(0)) / len(mine)).quantize(Decimal("0.01"))


def scores_csv(path: Path, part: str, codes_to_receipts: dict[str, str]) -> Path:
    """Every assigned sheet of one part as the CSV the office would import."""
    bias = WRITTEN_BIAS if part == "written" else PRESENTATION_BIAS
    lines = ["receipt_no,evaluator,part," + ",".join(CRITERIA)]
    for code, receipt in codes_to_receipts.items():
        for evaluator, b in zip(EVALUATORS, bias, strict=True):
            if conflicted(code, evaluator):
                continue
            pts = sheet(Decimal(TARGETS[code][0 if part == "written" else 1]) + b, code)
            lines.append(f"{receipt},{evaluator},{part}," + ",".join(str(pts[k]) for k in CRITERIA))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


OFFICE = Actor("lh-office", Role.ADMIN)
APPLICANT_ACTOR = Actor("applicant", Role.APPLICANT)


def at(app: App, clock: FixedClock, when: str) -> None:
    clock.set(kst(when))
    Ticker(app, "test").run_until_idle()


def apps(app: App) -> dict[str, dict[str, object]]:
    """code -> application row (for the 12 scenario applicants)."""
    with read(app.db) as conn:
        rows = conn.execute(
            sa.select(APPLICATION, APPLICANT.c.code)
            .join(APPLICANT, APPLICANT.c.id == APPLICATION.c.applicant_id)
            .join(TRACK_TABLE, TRACK_TABLE.c.id == APPLICATION.c.track_id)
            .where(TRACK_TABLE.c.key == TRACK, APPLICANT.c.code.in_([*list(NATIONAL), "41110"]))
        ).mappings()
        return {r["code"]: dict(r) for r in rows}


def notices(app: App, application_id: object) -> list[str]:
    with read(app.db) as conn:
        query = sa.select(OUTBOX.c.notice).where(OUTBOX.c.application_id == application_id).order_by(OUTBOX.c.id)
        return list(conn.execute(query).scalars())


def states(app: App) -> dict[str, str]:
    return {code: str(r["state"]) for code, r in apps(app).items()}


def prepare(app: App, clock: FixedClock, tmp_path: Path) -> App:
    """Applicants and committee imported; the call announced by the ticker."""
    csv = tmp_path / "applicants.csv"
    csv.write_text(APPLICANTS_CSV, encoding="utf-8")
    evs = tmp_path / "evaluators.csv"
    evs.write_text(EVALUATORS_CSV, encoding="utf-8")
    with write(app.db) as conn:
        applicants.store(conn, applicants.parse(csv))
        committee.store_evaluators(conn, committee.parse_evaluators(evs), clock.now())
        calendars.derive(app, conn)
        # Only this track's deadlines: the other tracks would fire (and render) for nothing.
        other = sa.select(TRACK_TABLE.c.id).where(TRACK_TABLE.c.key != TRACK)
        conn.execute(sa.delete(DEADLINE).where(DEADLINE.c.track_id.in_(other)))
    at(app, clock, "2024-03-29 10:00")
    return app


def receive_all(app: App, clock: FixedClock) -> None:
    clock.set(kst("2024-05-28 11:00"))
    for code, national in NATIONAL.items():
        kind = "climate_crisis" if int(code) % 2 else "local_extinction"
        plans.submit(app, TRACK, code, national, national, OFFICE, f"{code} 스마트도시", kind)
    plans.submit(app, TRACK, "41110", 8_000_000_000, 8_000_000_000, OFFICE, "수원 스마트도시", "climate_crisis")


def application(app: App, code: str) -> dict[str, Any]:
    """The application row of one applicant code on the scenario track."""
    with read(app.db) as conn:
        row = (
            conn.execute(
                sa.select(APPLICATION)
                .join(APPLICANT, APPLICANT.c.id == APPLICATION.c.applicant_id)
                .join(TRACK_TABLE, TRACK_TABLE.c.id == APPLICATION.c.track_id)
                .where(TRACK_TABLE.c.key == TRACK, APPLICANT.c.code == code)
            )
            .mappings()
            .one()
        )
    return dict(row)


def import_sheets(app: App, path: Path, part: str, receipts: dict[str, str]) -> None:
    """Every assigned sheet of one part, entered as the office's CSV import would."""
    sheets, where = committee.parse_scores(scores_csv(path, part, receipts), app.loaded.config.track(TRACK)[1])
    committee.enter_sheets(app, sheets, OFFICE, where)

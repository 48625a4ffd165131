"""A track's final results for publication: a CSV, a JSON file and a self-contained HTML page.

`gather` reads, in one snapshot, the ranking `gongmo rank` prints (selection.ranking_in and
selection.table: the same rows, read only), each ranked application's outcome as the database
holds it (its state, waitlist position and local share) and the counts of the track's
applications, and takes the audit anchor that covers them (engine/audit.take_anchor: a Merkle root
over every chain head, stored with the heads it covers, so that `gongmo audit verify --anchor
DIGEST` finds it), so the figures and the anchor describe the same instant. `publish` writes the three files, only
after the office released the track's results (`gongmo outbox release TRACK results` sets
`results_released_at`): before it, they would break the embargo, and it refuses, writing nothing.

What is listed: each selected and waitlisted application (name, receipt number, the written and
presentation scores, the committee score, rank, outcome, waitlist position, national and local
amounts), the cutoff (the committee score of the last selected), the slots and the national
budget used, the counts (received, ranked, qualified, below the minimum, not selected, ...), the
time of publication and the anchor with the command that verifies it. A not-selected application
appears only in the counts, unless its track's `publish_not_selected` is true (a ministry decides
it): then it is listed too, with its committee score, rank and the reason of its last move into
not_selected (the audit row's reason without its "committee score S, rank R of N; " prefix: the
score and the rank are columns of their own). Every rank is the one the selection decided and the
applicant's notice told (the application's rank), not `gongmo rank`'s today: a withdrawal after the
selection takes an application out of the ranking, not out of the record.
No evaluator and no single sheet appears anywhere.

The files are for publication, so each is written 0644 (readable by anyone who can reach the
folder, writable by its owner) and a folder created for them 0755, whatever the umask: the CLI runs
with umask 077, which suits the office's private exports (stages/exports.py writes them 0600) but
would leave a web server unable to serve these. Each file is written to a temporary name beside it
and renamed into place, so a reader never sees half a file.

The CSV is UTF-8 with a BOM (spreadsheet programs then read Korean correctly) and a text cell that
a spreadsheet would take for a formula is written behind a single quote (exports.is_formula, the
rule of the office's exports). It holds two blocks separated by an empty line: one row per listed
application (the columns of ROW_COLUMNS), then `item,value` rows with the track's figures
(SUMMARY_ITEMS). The HTML page has no external asset (inline CSS only, allowed by its hash in the
page's Content-Security-Policy, which allows nothing else: no script, font, image or connection),
labels in Korean with English beside them, and prints on A4.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import jinja2
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gongmo.states.errors import Conflict, InvalidInput
from gongmo.workflow.core import lookups
from gongmo.workflow.core.config import Contest, Track
from gongmo.workflow.core.models import APPLICATION, AUDIT
from gongmo.workflow.engine import audit
from gongmo.workflow.stages import exports, selection

if TYPE_CHECKING:
    from gongmo.workflow.engine.app import App

FILE_MODE = 0o644  # published: anyone may read them (see the module's docstring)
DIR_MODE = 0o755
OUTCOME = {"selected": "selected", "kickoff": "selected", "waitlisted": "waitlisted", "not_selected": "not_selected"}
ROW_COLUMNS = (
    "rank",
    "receipt_no",
    "applicant",
    "outcome",
    "written",
    "presentation",
    "score",
    "waitlist_position",
    "national_krw",
    "local_krw",
    "tie_break",
    "reason",
)
SUMMARY_ITEMS = (
    "track",
    "track_name_ko",
    "track_name_en",
    "contest",
    "ministry",
    "released_at",
    "published_at",
    "minimum_score",
    "cutoff",
    "slots_used",
    "slots",
    "national_used_krw",
    "national_budget_krw",
    "received",
    "disqualified",
    "withdrawn",
    "ranked",
    "qualified",
    "below_minimum",
    "selected",
    "waitlisted",
    "not_selected",
    "cancelled",
    "anchor_digest",
    "anchor_rows",
    "anchor_at",
    "verify",
)
# What selection.select writes before a decision's note in its audit reason, and the note's own
# "rank R: ": both name the rank at the selection, which a later withdrawal changes in the ranking.
_DECISION_PREFIX = re.compile(r"^(committee score [0-9.]+, rank [0-9]+ of [0-9]+; )?(rank [0-9]+: )?")


@dataclass(frozen=True)
class Listed:
    """One application as published."""

    rank: int
    receipt_no: str
    applicant: str
    outcome: str  # selected, waitlisted or not_selected
    written: str
    presentation: str
    score: str
    waitlist_position: int | None
    national_krw: int | None  # None for a not-selected one (an empty cell)
    local_krw: int | None
    tie_break: str
    reason: str = ""  # a not-selected application's, when they are listed

    def row(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ROW_COLUMNS}


@dataclass(frozen=True)
class Results:
    contest: Contest
    track: Track
    released_at: datetime
    published_at: datetime
    listed: list[Listed]  # by rank: the selected and waitlisted (and the not selected, if published)
    counts: dict[str, int]
    cutoff: str | None  # the committee score of the last selected (None: nobody is selected)
    national_used_krw: int
    anchor_digest: str
    anchor_rows: int
    anchor_at: datetime  # when the anchor was taken (an earlier publication's, if nothing changed since)
    verify: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "verify", f"gongmo audit verify --anchor {self.anchor_digest}")

    @property
    def slots_used(self) -> int:
        return self.counts["selected"]

    def summary(self) -> dict[str, Any]:
        """The track's figures: the CSV's second block, item by item."""
        t = self.track
        return {
            "track": t.key,
            "track_name_ko": t.name_ko,
            "track_name_en": t.name_en,
            "contest": self.contest.key,
            "ministry": self.contest.ministry,
            "released_at": _iso(self.released_at, self.contest.timezone),
            "published_at": _iso(self.published_at, self.contest.timezone),
            "minimum_score": str(t.evaluation.minimum_score),
            "cutoff": self.cutoff or "",
            "slots_used": self.slots_used,
            "slots": t.slots,
            "national_used_krw": self.national_used_krw,
            "national_budget_krw": t.funding.budget_national_krw,
            **self.counts,
            "anchor_digest": self.anchor_digest,
            "anchor_rows": self.anchor_rows,
            "anchor_at": _iso(self.anchor_at, self.contest.timezone),
            "verify": self.verify,
        }

    def document(self) -> dict[str, Any]:
        """The JSON file's content."""
        t, c = self.track, self.contest
        rows = [x.row() for x in self.listed]
        return {
            "contest": {"key": c.key, "name_ko": c.name_ko, "name_en": c.name_en, "ministry": c.ministry},
            "track": {"key": t.key, "name_ko": t.name_ko, "name_en": t.name_en},
            "released_at": _iso(self.released_at, c.timezone),
            "published_at": _iso(self.published_at, c.timezone),
            "minimum_score": str(t.evaluation.minimum_score),
            "cutoff": self.cutoff,
            "slots": {"used": self.slots_used, "of": t.slots},
            "national_budget_krw": {"used": self.national_used_krw, "of": t.funding.budget_national_krw},
            "counts": dict(self.counts),
            "not_selected_listed": t.publish_not_selected,
            "applications": [r for r in rows if r["outcome"] != "not_selected"],
            "not_selected": [_not_selected(r) for r in rows if r["outcome"] == "not_selected"],
            "anchor": {
                "digest": self.anchor_digest,
                "rows": self.anchor_rows,
                "at": _iso(self.anchor_at, c.timezone),
            },
            "verify": self.verify,
        }


def _not_selected(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("rank", "receipt_no", "applicant", "score", "reason")}


def _iso(value: datetime, zone: str) -> str:
    return value.astimezone(ZoneInfo(zone)).isoformat(timespec="seconds")


def gather(app: App, track_key: str) -> Results:
    """The track's results as they are published now, with the audit anchor taken (and stored,
    so `gongmo audit verify --anchor DIGEST` finds it) in the same snapshot as the figures;
    refused before the results' release, nothing stored."""
    contest, track = app.loaded.config.track(track_key)
    now = app.clock.now()
    # One snapshot (REPEATABLE READ on PostgreSQL), written to: the anchor is stored.
    with audit.snapshot(app.db, write=True) as conn:
        track_row = lookups.track_by_key(conn, app.loaded.config, track_key)
        released = track_row["results_released_at"]
        if released is None:
            raise Conflict(
                f"results of {track_key} are not released yet (released by"
                f" `gongmo outbox release {track_key} results`): publishing before would break the embargo"
            )
        ranking = selection.ranking_in(conn, track)
        apps = {
            int(r.id): r
            for r in conn.execute(
                sa.select(
                    APPLICATION.c.id,
                    APPLICATION.c.state,
                    APPLICATION.c.rank,
                    APPLICATION.c.waitlist_position,
                    APPLICATION.c.local_krw,
                ).where(APPLICATION.c.track_id == track_row["id"], APPLICATION.c.submitted_at.is_not(None))
            )
        }
        reasons = _not_selected_reasons(conn, [i for i, r in apps.items() if r.state == "not_selected"])
        stamp = audit.take_anchor(conn, now)  # the Merkle root over every chain head, stored with them
    rows = selection.table(ranking)
    ids = [r.entry.application_id for r in ranking.rows]
    listed: list[Listed] = []
    for app_id, row in zip(ids, rows, strict=True):
        state = apps[app_id].state
        outcome = OUTCOME.get(state)
        if outcome is None or (outcome == "not_selected" and not track.publish_not_selected):
            continue
        shown = outcome != "not_selected"  # a not-selected one is listed with its score, rank and reason only
        listed.append(
            Listed(
                # The rank the selection decided (and the notice told), not a rank renumbered since:
                # an application withdrawn after the selection leaves the ranking, not the record.
                rank=int(apps[app_id].rank if apps[app_id].rank is not None else row["rank"]),
                receipt_no=str(row["receipt_no"]),
                applicant=str(row["applicant"]),
                outcome=outcome,
                written=str(row["written"]) if shown else "",
                presentation=str(row["presentation"]) if shown else "",
                score=str(row["score"]),
                waitlist_position=apps[app_id].waitlist_position if outcome == "waitlisted" else None,
                national_krw=int(row["national_krw"]) if shown else None,
                local_krw=int(apps[app_id].local_krw or 0) if shown else None,
                tie_break=str(row["tie"]) if shown else "",
                reason="" if shown else reasons.get(app_id, ""),
            )
        )
    selected = [
        (row, app_id) for app_id, row in zip(ids, rows, strict=True) if OUTCOME.get(apps[app_id].state) == "selected"
    ]
    by_state = Counter(r.state for r in apps.values())
    ranked_states = Counter(apps[i].state for i in ids)
    counts = {
        "received": len(apps),
        "disqualified": by_state["disqualified"],
        "withdrawn": by_state["withdrawn"],
        "ranked": len(ranking.rows),
        "qualified": sum(1 for r in ranking.rows if r.qualified),
        "below_minimum": sum(1 for r in ranking.rows if not r.qualified),
        "selected": len(selected),
        "waitlisted": ranked_states["waitlisted"],
        "not_selected": ranked_states["not_selected"],
        "cancelled": ranked_states["cancelled"],
    }
    cutoff = min((Decimal(str(row["score"])) for row, _ in selected), default=None)
    return Results(
        contest=contest,
        track=track,
        released_at=released,
        published_at=now,
        listed=listed,
        counts=counts,
        cutoff=None if cutoff is None else str(cutoff),
        national_used_krw=sum(int(row["national_krw"]) for row, _ in selected),
        anchor_digest=str(stamp.digest),
        anchor_rows=int(stamp.rows),
        anchor_at=stamp.at,
    )


def _not_selected_reasons(conn: Connection, ids: list[int]) -> dict[int, str]:
    """The reason of each application's last move into not_selected: its decision's note, without
    its score and rank, which the published row shows in their own columns."""
    if not ids:
        return {}
    last = (
        sa.select(sa.func.max(AUDIT.c.id))
        .where(AUDIT.c.application_id.in_(ids), AUDIT.c.to_state == "not_selected")
        .group_by(AUDIT.c.application_id)
    )
    found = conn.execute(sa.select(AUDIT.c.application_id, AUDIT.c.reason).where(AUDIT.c.id.in_(last)))
    return {int(i): _DECISION_PREFIX.sub("", reason or "", count=1) for i, reason in found}


@dataclass(frozen=True)
class Published:
    results: Results
    files: list[Path]


def publish(app: App, track_key: str, out: Path | None = None) -> Published:
    """Write `<track>-results.csv`, `.json` and `.html` to `out` (default ./results/<track>/,
    created); refused before the track's results are released, nothing written."""
    results = gather(app, track_key)
    folder = Path("results") / track_key if out is None else out
    if folder.exists() and not folder.is_dir():
        raise InvalidInput(f"--out {folder}: not a folder; name a folder (it is created if missing)")
    contents = {
        f"{track_key}-results.csv": csv_text(results).encode("utf-8-sig"),
        f"{track_key}-results.json": (json.dumps(results.document(), ensure_ascii=False, indent=2) + "\n").encode(),
        f"{track_key}-results.html": html_page(results).encode(),
    }
    try:
        _make_folder(folder)
        files = [_write(folder / name, data) for name, data in contents.items()]
    except OSError as exc:
        raise InvalidInput(f"--out {folder}: cannot write ({exc.strerror})") from None
    return Published(results, files)


def _make_folder(folder: Path) -> None:
    """`folder` and its missing parents, each created 0755 (the ones that exist are left as they are)."""
    missing = [p for p in [folder, *folder.parents] if not p.exists()]
    for p in reversed(missing):
        p.mkdir()
        os.chmod(p, DIR_MODE)


def _write(path: Path, data: bytes) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), FILE_MODE)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# -- the CSV -------------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    """A cell as the office's exports write it: a formula-looking text behind a single quote."""
    if value is None:
        return ""
    return "'" + value if exports.is_formula(value) else value


def csv_text(results: Results) -> str:
    """The CSV (without its BOM, added when it is encoded): the listed rows, an empty line, the figures."""
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\r\n")
    out.writerow(ROW_COLUMNS)
    out.writerows([[_cell(row[k]) for k in ROW_COLUMNS] for row in (x.row() for x in results.listed)])
    out.writerow([])
    out.writerow(["item", "value"])
    summary = results.summary()
    out.writerows([[item, _cell(summary[item])] for item in SUMMARY_ITEMS])
    return buffer.getvalue()


# -- the HTML page -----------------------------------------------------------------------------

STYLE = """
body { font-family: "Malgun Gothic", "Apple SD Gothic Neo", "Noto Sans KR", sans-serif; margin: 2em; color: #111; }
h1 { font-size: 1.5em; margin-bottom: .2em; }
h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #444; }
p.sub { margin-top: 0; color: #333; }
table { border-collapse: collapse; width: 100%; font-size: .92em; }
th, td { border: 1px solid #888; padding: .3em .5em; vertical-align: top; }
th { background: #eee; text-align: left; }
td.n { text-align: right; white-space: nowrap; }
dl.figures { display: grid; grid-template-columns: max-content auto; gap: .25em 1.2em; }
dl.figures dt { font-weight: bold; }
dl.figures dd { margin: 0; }
code { font-family: monospace; word-break: break-all; }
.en { color: #444; }
@media print {
  body { margin: 0; font-size: 10pt; }
  tr, dl.figures { page-break-inside: avoid; }
  thead { display: table-header-group; }
  th { background: none; }
}
@page { size: A4; margin: 15mm; }
""".strip()
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
# Nothing external: no script, image, font, frame or connection; the one <style> element by its hash.
CSP = f"default-src 'none'; style-src '{STYLE_HASH}'; base-uri 'none'; form-action 'none'"

OUTCOME_LABEL = {
    "selected": "선정 / Selected",
    "waitlisted": "예비 / Waitlisted",
    "not_selected": "미선정 / Not selected",
}

PAGE = """<!DOCTYPE html>
<html lang="ko">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{ csp }}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{ track.name_ko }} 선정 결과 / {{ track.name_en }}: results</title>
<style>{{ style|safe }}</style>
</head>
<body>
<h1>{{ contest.name_ko }} · {{ track.name_ko }} 선정 결과</h1>
<p class="sub en" lang="en">{{ contest.name_en }} · {{ track.name_en }}: results</p>
<p>{{ contest.ministry }}</p>

<h2>요약 / <span lang="en">Summary</span></h2>
<dl class="figures">
<dt>공개 일시 / <span lang="en">Published</span></dt><dd>{{ published }}</dd>
<dt>결과 발표 일시 / <span lang="en">Results released</span></dt><dd>{{ released }}</dd>
<dt>접수 / <span lang="en">Applications received</span></dt><dd>{{ counts.received }}</dd>
<dt>예비검토 탈락 / <span lang="en">Disqualified at review</span></dt><dd>{{ counts.disqualified }}</dd>
<dt>철회 / <span lang="en">Withdrawn</span></dt><dd>{{ counts.withdrawn }}</dd>
<dt>평가 대상 / <span lang="en">Ranked by the committee</span></dt><dd>{{ counts.ranked }}</dd>
<dt>기준점수 이상 / <span lang="en">Qualified (at or above {{ minimum }})</span></dt><dd>{{ counts.qualified }}</dd>
<dt>기준점수 미달 / <span lang="en">Below the minimum {{ minimum }}</span></dt><dd>{{ counts.below_minimum }}</dd>
<dt>선정 / <span lang="en">Selected</span></dt><dd>{{ counts.selected }}</dd>
<dt>예비 / <span lang="en">Waitlisted</span></dt><dd>{{ counts.waitlisted }}</dd>
<dt>미선정 / <span lang="en">Not selected</span></dt><dd>{{ counts.not_selected }}</dd>
<dt>선정 후 취소 / <span lang="en">Cancelled after selection</span></dt><dd>{{ counts.cancelled }}</dd>
<dt>선정 개소 / <span lang="en">Slots used</span></dt><dd>{{ slots_used }} / {{ track.slots }}</dd>
<dt>국비 사용 / <span lang="en">National budget used (KRW)</span></dt><dd>{{ won(used) }} / {{ won(budget) }}</dd>
<dt>선정 커트라인 / <span lang="en">Cutoff (score of the last selected)</span></dt><dd>{{ cutoff or "-" }}</dd>
</dl>

<h2>선정 및 예비 / <span lang="en">Selected and waitlisted</span></h2>
<table>
<thead><tr>
<th>순위 / <span lang="en">Rank</span></th>
<th>접수번호 / <span lang="en">Receipt no.</span></th>
<th>신청기관 / <span lang="en">Applicant</span></th>
<th>결과 / <span lang="en">Outcome</span></th>
<th>예비 순번 / <span lang="en">Waitlist position</span></th>
<th>서면평가 / <span lang="en">Written</span></th>
<th>발표평가 / <span lang="en">Presentation</span></th>
<th>종합점수 / <span lang="en">Committee score</span></th>
<th>국비 / <span lang="en">National (KRW)</span></th>
<th>지방비 / <span lang="en">Local (KRW)</span></th>
<th>동점 처리 / <span lang="en">Tie-break</span></th>
</tr></thead>
<tbody>
{%- for r in chosen %}
<tr><td class="n">{{ r.rank }}</td><td>{{ r.receipt_no }}</td><td>{{ r.applicant }}</td><td>{{ label[r.outcome] }}</td>
<td class="n">{{ r.waitlist_position or "" }}</td><td class="n">{{ r.written }}</td>
<td class="n">{{ r.presentation }}</td>
<td class="n">{{ r.score }}</td><td class="n">{{ won(r.national_krw) }}</td><td class="n">{{ won(r.local_krw) }}</td>
<td>{{ r.tie_break }}</td></tr>
{%- else %}
<tr><td colspan="11">없음 / <span lang="en">None</span></td></tr>
{%- endfor %}
</tbody>
</table>
{%- if track.publish_not_selected %}

<h2>미선정 / <span lang="en">Not selected</span></h2>
<table>
<thead><tr>
<th>순위 / <span lang="en">Rank</span></th>
<th>접수번호 / <span lang="en">Receipt no.</span></th>
<th>신청기관 / <span lang="en">Applicant</span></th>
<th>종합점수 / <span lang="en">Committee score</span></th>
<th>사유 / <span lang="en">Reason</span></th>
</tr></thead>
<tbody>
{%- for r in others %}
<tr><td class="n">{{ r.rank }}</td><td>{{ r.receipt_no }}</td><td>{{ r.applicant }}</td><td class="n">{{ r.score }}</td>
<td>{{ r.reason }}</td></tr>
{%- else %}
<tr><td colspan="5">없음 / <span lang="en">None</span></td></tr>
{%- endfor %}
</tbody>
</table>
{%- endif %}

<h2>감사 기록 앵커 / <span lang="en">Audit anchor</span></h2>
<dl class="figures">
<dt>다이제스트 / <span lang="en">Digest</span></dt><dd><code>{{ anchor_digest }}</code></dd>
<dt>포함 기록 수 / <span lang="en">Rows covered</span></dt><dd>{{ anchor_rows }}</dd>
<dt>앵커 시각 / <span lang="en">Anchored at</span></dt><dd>{{ anchor_at }}</dd>
</dl>
<p>검증 방법 / <span lang="en">How to verify</span>: <code>{{ verify }}</code>
— 이 결과 이후 감사 기록이 바뀌지 않았음을 확인합니다 /
<span lang="en">proves that no audit or event row covered by this anchor has changed since.</span></p>
</body>
</html>
"""

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
_PAGE = _ENV.from_string(PAGE)


def html_page(results: Results) -> str:
    """The page: self-contained (inline CSS only), Korean with English beside it."""
    zone = results.contest.timezone
    return _PAGE.render(
        csp=CSP,
        style=STYLE,  # as it is (|safe): the CSP allows exactly this text, by its hash
        contest=results.contest,
        track=results.track,
        published=_shown(results.published_at, zone),
        released=_shown(results.released_at, zone),
        counts=results.counts,
        minimum=results.track.evaluation.minimum_score,
        slots_used=results.slots_used,
        used=results.national_used_krw,
        budget=results.track.funding.budget_national_krw,
        cutoff=results.cutoff,
        chosen=[x for x in results.listed if x.outcome != "not_selected"],
        others=[x for x in results.listed if x.outcome == "not_selected"],
        label=OUTCOME_LABEL,
        won=lambda n: f"{n:,}",
        anchor_digest=results.anchor_digest,
        anchor_rows=results.anchor_rows,
        anchor_at=_shown(results.anchor_at, zone),
        verify=results.verify,
    )


def _shown(value: datetime, zone: str) -> str:
    return f"{value.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M %Z}"

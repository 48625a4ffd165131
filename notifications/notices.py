"""The notices gongmo sends, and the variables each template may use.

A notice's template may use exactly the variables declared here (common ones
plus its own). At start every template is checked against this contract and
rendered once with SAMPLE data (StrictUndefined), so a typo stops the start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

LANGUAGES: tuple[str, ...] = ("ko", "en")

# Variables every notice receives.
COMMON: frozenset[str] = frozenset(
    {
        "contest_name",  # in the notice's language
        "track_name",  # in the notice's language
        "applicant_name",  # local government, e.g. 수원시
        "contact_name",  # the person in charge at the applicant
        "application_id",  # gongmo's number of the application
        "office",  # who runs the contest, e.g. LH 스마트도시개발처
        "office_phone",  # the office's telephone
        "portal_url",  # where the call is published
    }
)


@dataclass(frozen=True)
class Notice:
    key: str
    variables: frozenset[str]
    purpose: str
    # False for a notice of no contest and no application (a sign-in link): only its own variables.
    common: bool = True

    @property
    def allowed(self) -> frozenset[str]:
        return COMMON | self.variables if self.common else self.variables


def _n(key: str, purpose: str, *names: str, common: bool = True) -> Notice:
    return Notice(key=key, variables=frozenset(names), purpose=purpose, common=common)


NOTICES: dict[str, Notice] = {
    n.key: n
    for n in (
        _n(
            "call_announcement",
            "The call is open: who may apply, the window, the money.",
            "receipt_opens",
            "receipt_closes",
            "slots",
            "national_cap_krw",
            "program_years",
            "match_ratio",
        ),
        _n(
            "receipt_confirmation",
            "The plan was received; carries the receipt number and each current document's SHA-256.",
            "receipt_no",
            "submitted_at",
            "title",
            "national_krw",
            "local_krw",
            # each current document: kind, name_ko, name_en, file_name, size, size_bytes ("1,234"),
            # size_human ("1.2 MB"), sha256, version, file_type (engine/uploads.receipt_documents)
            "documents",
        ),
        _n(
            "deadline_reminder",
            "A deadline is near and the applicant has not submitted.",
            "milestone_name",
            "due_at",
        ),
        _n("expired", "Nothing was submitted by the close.", "receipt_closes"),
        _n(
            "review_passed",
            "The preliminary review passed; evaluation comes next.",
            "receipt_no",
            "evaluation_starts",
        ),
        _n(
            "disqualified",
            "The preliminary review failed, with the reason and how to object.",
            "receipt_no",
            "reason",
            "objection_until",
        ),
        _n(
            "objection_received",
            "The objection to a disqualification was received and will be decided.",
            "receipt_no",
            "objection_id",
        ),
        _n(
            "objection_rejected",
            "The objection was rejected: the disqualification stands, with the reason.",
            "receipt_no",
            "reason",
        ),
        _n(
            "presentation_invitation",
            "Date, time and place of the presentation evaluation.",
            "receipt_no",
            "slot_starts",
            "slot_ends",
            "place",
        ),
        _n(
            "selected",
            "The application was selected.",
            "receipt_no",
            "national_krw",
            "local_krw",
            "kickoff_due",
            "explanation",
        ),
        _n(
            "promoted",
            "A place became free: the waitlisted application is now selected.",
            "receipt_no",
            "national_krw",
            "local_krw",
            "kickoff_due",
            "explanation",
        ),
        _n(
            "waitlisted",
            "The application is on the waitlist.",
            "receipt_no",
            "waitlist_position",
            "explanation",
        ),
        _n(
            "not_selected",
            "The application was not selected.",
            "receipt_no",
            "reason",
            "explanation",
        ),
        _n(
            "kickoff_plan_request",
            "File the detailed implementation plan by the kickoff deadline.",
            "receipt_no",
            "kickoff_due",
        ),
        _n(
            "kickoff_plan_returned",
            "The implementation plan was returned with comments; file it again by the deadline.",
            "receipt_no",
            "comments",
            "kickoff_due",
        ),
        _n(
            "kickoff_confirmed",
            "The implementation plan was approved; the project starts.",
            "receipt_no",
            "national_krw",
            "local_krw",
            "program_years",
        ),
        _n(
            "cancelled",
            "The selection was cancelled (e.g. no kickoff plan), with the reason.",
            "receipt_no",
            "reason",
        ),
        _n(
            "withdrawal_confirmed",
            "The applicant's withdrawal was recorded; carries the receipt number ('-' before a plan was received).",
            "receipt_no",
            "withdrawn_at",
            "reason",
        ),
        _n(
            "calendar_change",
            "A date of the calendar moved.",
            "milestone_name",
            "old_at",
            "new_at",
            "reason",
        ),
        _n(
            "signin_link",
            "A one-time sign-in link (console or portal); sent to a person, of no application (core/sessions).",
            "recipient_name",  # the staff member's name, or the e-mail when none is known
            "role",  # admin (the office console); evaluator and applicant for the portals
            "signin_url",  # the link itself: never shown to anyone but its recipient (read/outbox hides it)
            "links",  # every link of the address (role, name, url): several when it is several people
            "valid_minutes",
            "expires_at",
            common=False,
        ),
    )
}

# -- which notice supersedes which ------------------------------------------------------
#
# A notice queued for an application cancels that application's older notices
# named here that have not been sent yet (pending, held, retry), and marks one
# being sent at that moment so the mailer settles it (not sent if it had not
# gone yet; otherwise recorded as sent though superseded). The same notice
# queued again (same key) is never its own victim.

# The selection's results: a newer one replaces an older one (selected, then
# corrected to waitlisted: the first must never go out after).
RESULT_NOTICES: frozenset[str] = frozenset({"selected", "promoted", "waitlisted", "not_selected"})
_RESULTS_AND_CANCEL = RESULT_NOTICES | {"cancelled"}

SUPERSEDES: dict[str, frozenset[str]] = {
    **{n: _RESULTS_AND_CANCEL for n in _RESULTS_AND_CANCEL},
    # A withdrawn applicant is told nothing more of a contest it has left: no result,
    # no invitation, no reminder, no "passed" that is no longer true.
    "withdrawal_confirmed": RESULT_NOTICES
    | {"review_passed", "presentation_invitation", "deadline_reminder", "kickoff_plan_request"},
    "review_passed": frozenset({"review_passed", "disqualified"}),
    "disqualified": frozenset({"review_passed", "disqualified", "presentation_invitation"}),
    "presentation_invitation": frozenset({"presentation_invitation"}),  # a moved slot: the old time must not go out
}


def supersedes(notice: str) -> frozenset[str]:
    """The older unsent notices of the same application that `notice` cancels."""
    return SUPERSEDES.get(notice, frozenset())


def superseded_by(notice: str) -> frozenset[str]:
    """The newer notices that cancel an unsent `notice`."""
    return frozenset(new for new, old in SUPERSEDES.items() if notice in old)


_T = datetime(2021, 12, 29, 9, 0, tzinfo=UTC)  # 18:00 KST

# `explanation` (the four result notices): how the result was reached, one line each in the
# applicant's language, from the catalogue (reasons.py "explain.*", built by
# workflow/stages/selection.py explain from the ranking rows `gongmo rank` prints): the part
# scores and how each was aggregated, the weighted committee score, the rank among the
# qualified, the cutoff, a tie and its tie-break, the rule that decided. Empty for a result an
# admin gives by hand (a template shows the block only when it has lines).

# Sample values for the start-up render; one per variable of any notice.
SAMPLE: dict[str, object] = {
    "contest_name": "2022년 중·소도시 스마트시티 조성사업",
    "track_name": "중·소도시형",
    "applicant_name": "공주시",
    "contact_name": "김민준",
    "application_id": 42,
    "office": "LH 스마트도시개발처",
    "office_phone": "044-201-3737",
    "portal_url": "https://www.smartcity.go.kr",
    "receipt_opens": _T.replace(day=27, hour=0),
    "receipt_closes": _T,
    "slots": 16,
    "national_cap_krw": 2_000_000_000,
    "program_years": 1,
    "match_ratio": 1.0,
    "receipt_no": "SMC22-0001",
    "submitted_at": _T.replace(hour=5),
    "title": "주민참여형 스마트 주차공유",
    "national_krw": 2_000_000_000,
    "local_krw": 2_000_000_000,
    "milestone_name": "receipt_closes",
    "due_at": _T,
    "evaluation_starts": _T.replace(year=2022, month=1, day=19, hour=0),
    "reason": "인구 기준 초과 (1,190,000명 / 상한 1,000,000명 미만)",
    "objection_until": _T.replace(year=2022, month=1, day=12),
    "slot_starts": _T.replace(year=2022, month=1, day=25, hour=1),
    "slot_ends": _T.replace(year=2022, month=1, day=25, hour=1, minute=30),
    "place": "LH 서울지역본부 대회의실",
    "kickoff_due": _T.replace(year=2022, month=3, day=31),
    "waitlist_position": 1,
    "objection_id": 3,
    "explanation": [
        "서면평가 점수 82.33점: 평가위원 5명 점수 중 최고점과 최저점을 뺀 3명 점수의 평균(절사평균)",
        "발표평가 점수 85.00점: 평가위원 4명 점수의 평균",
        "평가 점수: 서면평가 82.33점 × 0.4 + 발표평가 85.00점 × 0.6 = 83.93점",
        "순위: 선정 최저 점수 70점 이상인 9개 기관 중 2위 (최저 점수 미만 1개 기관)",
        "선정 기준선: 80.13점 (선정 때 마지막으로 선정된 기관의 평가 점수)",
        "선정: 9개 기관 중 2위로, 선정 규모 3곳과 예산 범위 안에 들었습니다",
    ],
    "comments": "연차별 재원 계획에 지방비 확보 근거(의회 의결 등)를 첨부해 주십시오.",
    "withdrawn_at": _T.replace(hour=3),
    "old_at": _T,
    "new_at": _T.replace(day=30),
    "recipient_name": "이서연",
    "role": "admin",
    "signin_url": "http://127.0.0.1:8470/signin/SAMPLE-TOKEN",
    "links": [
        {"role": "admin", "name": "", "url": "http://127.0.0.1:8470/signin/SAMPLE-TOKEN"},
        {"role": "applicant", "name": "공주시 (44150)", "url": "http://127.0.0.1:8470/signin/SAMPLE-TOKEN-2"},
    ],
    "valid_minutes": 15,
    "expires_at": _T.replace(minute=15),
    "documents": [
        {
            "kind": "plan",
            "name_ko": "사업계획서",
            "name_en": "Project plan",
            "file_name": "공주시_스마트시티_사업계획서.pdf",
            "size": 8_412_337,
            "size_bytes": "8,412,337",
            "size_human": "8.0 MB",
            "sha256": "9f2c4b1e7a0d3c5b8e6f1a2d4c7b9e0f3a5d8c1b6e4f7a9d2c5b8e1f4a7d0c3b",
            "version": 1,
            "file_type": "pdf",
        },
        {
            "kind": "budget",
            "name_ko": "사업비 산출내역서",
            "name_en": "Budget sheet",
            "file_name": "사업비_산출내역.xlsx",
            "size": 48_213,
            "size_bytes": "48,213",
            "size_human": "47.1 KB",
            "sha256": "3b7e0c2a9d4f6b1e8c5a7d0f2b4e6c9a1d3f5b7e0c2a4d6f8b1e3c5a7d9f0b2e",
            "version": 2,
            "file_type": "xlsx",
        },
    ],
}

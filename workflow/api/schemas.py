"""Request and response bodies (plain pydantic models, not the tables).

Text fields follow the free-text rule of states/text.py, the CLI's too: line
breaks and tabs, and no other control character (PostgreSQL refuses NUL, and no
reason or title needs a bell); a refusal names the character and the field.
Numbers are bounded by what the columns hold.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

from gongmo.states import text as free_text
from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.states.lifecycle import Role

# The free-text rule as the OpenAPI document shows it (pydantic already refuses a lone surrogate).
TEXT = r"^[^\x00-\x08\x0b-\x1f\x7f]*$"


def _free_text(value: Any) -> Any:
    """The free-text rule, checked before the surrounding spaces are stripped (a trailing control
    character is refused, not dropped)."""
    if isinstance(value, str):
        problem = free_text.problem(value)
        if problem is not None:
            raise PydanticCustomError("control_character", problem)
    return value


FreeText = BeforeValidator(_free_text)
Documented = Field(json_schema_extra={"pattern": TEXT})
Text = Annotated[str, FreeText, StringConstraints(strip_whitespace=True, max_length=2000), Documented]
Name = Annotated[str, FreeText, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), Documented]
Won = Annotated[int, Field(ge=0, le=10**15, description="Won (KRW), a whole number.")]
Code = Annotated[str, StringConstraints(pattern=r"^[0-9]{5}$")]

# The triggers a person may fire through /transitions (submission has its own route).
TriggerName = StrEnum(  # type: ignore[misc]
    "TriggerName",
    {t.name: t.name for t in TABLE.triggers if t.name != "submit" and t.roles - {Role.SYSTEM}},
)
StateName = StrEnum("StateName", {s: s for s in TABLE.state_names})  # type: ignore[misc]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TransitionIn(Body):
    trigger: TriggerName
    reason: Text | None = None
    version: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="The version decided on (or send If-Match)."
    )
    waitlist_position: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="With the trigger 'waitlist': the position to take (default: the next after the last).",
    )


class SubmissionIn(Body):
    track: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,39}$")]
    applicant: Code | None = Field(
        default=None, description="The applicant's code; an applicant token's own if omitted."
    )
    national_krw: Won
    local_krw: Won
    title: Text | None = None
    project_type: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,40}$")] | None = None
    years: int | None = Field(default=None, ge=1, le=10)
    answers: dict[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")], Any] | None = Field(
        default=None,
        description="Answers to the track's questions, question key -> answer (merged over those given before).",
    )


class ObjectionIn(Body):
    grounds: Annotated[
        str, FreeText, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000), Documented
    ]


Points = Annotated[str, StringConstraints(strip_whitespace=True, max_length=12)] | StrictInt | StrictFloat


class SheetIn(Body):
    points: dict[Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,32}$")], Points] = Field(
        max_length=30, description='Criterion -> points, e.g. {"feasibility": "27.5"}.'
    )
    evaluator: Annotated[str, FreeText, StringConstraints(max_length=200), Documented] | None = Field(
        default=None, description="Admin only: the evaluator whose sheet this is (an evaluator token is its own)."
    )


class SelectionIn(Body):
    confirm: StrictBool = Field(default=False, description="false: a dry run; true: apply in one transaction.")


class ReleaseIn(Body):
    notice: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,40}$")]
    count: int = Field(
        ge=1, le=10**7, description="How many held notices you saw (GET .../outbox/held); refused if it changed."
    )


class OutboxRetryIn(Body):
    state: Literal["dead", "retry"] = Field(description="Retry every notice in this state (required).")
    since: AwareDatetime | None = Field(default=None, description="Only notices queued at or after this instant.")
    track: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,39}$")] | None = Field(
        default=None, description="Only this track's notices."
    )


class ApplicationOut(BaseModel):
    id: int
    track: str
    applicant_code: str
    applicant_name: str
    state: str
    version: int
    receipt_no: str | None
    title: str | None
    project_type: str | None
    national_krw: int | None
    local_krw: int | None
    years: int | None
    submitted_at: datetime | None
    score: str | None
    rank: int | None
    waitlist_position: int | None
    result_pending: bool = Field(
        default=False,
        description="The track's results are under embargo: the state shown is the stage before the result.",
    )


class ResultOut(BaseModel):
    """The explained result, once released: aggregates only (no evaluator, no single sheet)."""

    committee_score: str | None
    written_score: str | None
    presentation_score: str | None
    rank: int
    ranked: int = Field(description="How many applications of the track were ranked.")
    minimum_score: str
    last_selected_score: str | None
    waitlist_position: int | None


class HistoryRow(BaseModel):
    at: datetime
    actor: str
    role: str
    trigger: str
    from_state: str | None
    to_state: str
    reason: str | None


class NoticeRow(BaseModel):
    id: int
    notice: str
    language: str
    state: str
    subject: str
    created_at: datetime
    sent_at: datetime | None


class CalendarChangeRow(BaseModel):
    kind: str = Field(description="reschedule (the track's milestone moved) or extension (this application's own)")
    milestone: str
    old_at: datetime
    new_at: datetime
    reason: str
    actor: str
    at: datetime


class DocumentRow(BaseModel):
    """One stored version of one kind of an application's documents (an evaluator: the current ones)."""

    id: int
    kind: str
    version: int
    current: bool = Field(description="The version a download without ?version= serves.")
    file_name: str = Field(description="The name it was sent with: NFC, path parts removed, Korean kept.")
    size: int = Field(description="Bytes.")
    file_type: str = Field(description="Decided from the bytes: pdf, hwp, hwpx, docx, xlsx, png or jpeg.")
    sha256: str = Field(description="The SHA-256 of the bytes, hex.")
    uploaded_at: datetime
    actor: str | None = Field(default=None, description="Who uploaded it (the office and the applicant see it).")
    role: str | None = None


class DocumentOut(BaseModel):
    """A file as an upload stored it."""

    document_id: int
    application_id: int
    kind: str
    version: int
    file_name: str = Field(description="The name it was sent with: NFC, path parts removed, Korean kept.")
    size: int = Field(description="Bytes.")
    file_type: str = Field(description="Decided from the bytes: pdf, hwp, hwpx, docx, xlsx, png or jpeg.")
    sha256: str = Field(description="The SHA-256 of the bytes, hex.")
    current: bool
    uploaded_at: datetime
    replaced_version: int | None = Field(description="The version this upload made not current, if any.")


class ApplicationDetail(ApplicationOut):
    eligible: bool | None
    checklist: list[dict[str, Any]] | None
    actions: list[str] = Field(description="Triggers this token may fire from the current state.")
    history: list[HistoryRow]
    events: list[dict[str, Any]]
    calendar_changes: list[CalendarChangeRow] = Field(
        default_factory=list, description="The track's reschedules and this application's extensions, with why."
    )
    notices: list[NoticeRow]
    result: ResultOut | None = None
    documents: list[DocumentRow] = Field(default_factory=list, description="The plan's documents (issue 21).")
    answers: dict[str, Any] = Field(default_factory=dict, description="The answers to the track's questions.")


class Page(BaseModel):
    items: list[ApplicationOut]
    total: int
    next: str | None = Field(description="The URL of the next page, or null on the last one.")


class Me(BaseModel):
    role: str
    subject: str
    token_id: int

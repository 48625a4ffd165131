"""Database tables (sqlmodel). Thin: the rules live in states/ and engine.py.

Times are stored as UTC; UTCDateTime hands back aware datetimes on every
backend (SQLite keeps no zone of its own).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: gongmo stores aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_field(nullable: bool = False, index: bool = False, default: Any = ...) -> Any:
    if default is ...:
        default = None if nullable else ...
    return Field(default=default, sa_type=UTCDateTime, nullable=nullable, index=index)


class Contest(SQLModel, table=True):
    __tablename__ = "contest"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=40)
    name_ko: str
    name_en: str
    timezone: str = Field(max_length=64)
    national_budget_krw: int = Field(sa_type=sa.BigInteger)


class Track(SQLModel, table=True):
    __tablename__ = "track"
    id: int | None = Field(default=None, primary_key=True)
    contest_id: int = Field(foreign_key="contest.id", index=True)
    key: str = Field(unique=True, max_length=40)
    name_ko: str
    name_en: str
    slots: int
    receipt_prefix: str = Field(max_length=40)
    receipt_seq: int = 0
    announced_at: datetime | None = utc_field(nullable=True)
    # The results' embargo (0007): set when the first result is held (the selection's
    # confirmation), lifted when the office has released every held result notice.
    results_embargoed_at: datetime | None = utc_field(nullable=True)
    results_released_at: datetime | None = utc_field(nullable=True)
    # calendar, UTC
    announce_at: datetime = utc_field()
    receipt_opens: datetime = utc_field()
    receipt_closes: datetime = utc_field()
    # The preliminary review opens (0008); optional: None opens it at the receipt close.
    review_starts: datetime | None = utc_field(nullable=True)
    review_ends: datetime = utc_field()
    written_starts: datetime = utc_field()
    written_ends: datetime = utc_field()
    presentation_starts: datetime = utc_field()
    presentation_ends: datetime = utc_field()
    selection_at: datetime = utc_field()
    kickoff_due: datetime = utc_field()
    # The head of the track's event chain (0010; core/chain.py): the last track-level event's seq and hash.
    event_seq: int | None = None
    event_hash: str | None = Field(default=None, max_length=64)


class Applicant(SQLModel, table=True):
    """A local government that may apply."""

    __tablename__ = "applicant"
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=10)  # 행정표준코드, e.g. 41110
    name: str
    kind: str = Field(max_length=40)
    population: int
    contact_name: str
    email: str
    language: str = Field(default="ko", max_length=2)


class Application(SQLModel, table=True):
    __tablename__ = "application"
    __table_args__ = (
        sa.UniqueConstraint("track_id", "applicant_id", name="uq_application_track_applicant"),
        sa.Index("ix_application_track_state", "track_id", "state", "id"),  # keyset chunks (0006)
    )
    id: int | None = Field(default=None, primary_key=True)
    track_id: int = Field(foreign_key="track.id")
    applicant_id: int = Field(foreign_key="applicant.id", index=True)
    state: str = Field(max_length=32)
    version: int = 1
    receipt_no: str | None = Field(default=None, unique=True, max_length=48)
    title: str | None = None
    project_type: str | None = Field(default=None, max_length=40)
    national_krw: int | None = Field(default=None, sa_type=sa.BigInteger)
    local_krw: int | None = Field(default=None, sa_type=sa.BigInteger)
    submitted_at: datetime | None = utc_field(nullable=True)
    years: int | None = None  # the build years the plan asks for
    # The preliminary review's checklist (JSON: one entry per rule), written
    # when the application enters preliminary review; eligible = all passed.
    checklist: str | None = Field(default=None, sa_type=sa.Text)
    eligible: bool | None = None
    # The answers to the track's questions (JSON object: question key -> answer, as
    # states/questions.py normalises it), given with the submission, changed until the close (0009).
    answers: str | None = Field(default=None, sa_type=sa.Text)
    # The selection: rank in the track, committee score (e.g. "85.20"), waitlist position.
    rank: int | None = None
    score: str | None = Field(default=None, max_length=12)
    waitlist_position: int | None = None
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()
    # The heads of the application's two hash chains (0010; core/chain.py): its audit rows
    # (moved with the state, in the same UPDATE) and its events; seq and hash of the last row.
    audit_seq: int | None = None
    audit_hash: str | None = Field(default=None, max_length=64)
    event_seq: int | None = None
    event_hash: str | None = Field(default=None, max_length=64)


class Audit(SQLModel, table=True):
    """Append-only: one row per state change (and per creation)."""

    __tablename__ = "audit"
    __table_args__ = (sa.Index("ix_audit_application", "application_id", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="application.id")
    at: datetime = utc_field()
    actor: str
    role: str = Field(max_length=16)
    trigger: str = Field(max_length=32)
    from_state: str | None = Field(default=None, max_length=32)
    to_state: str = Field(max_length=32)
    reason: str | None = None
    # What the move recorded besides its reason (JSON), e.g. a receipt's document hashes (0009).
    detail: str | None = Field(default=None, sa_type=sa.Text)
    # The row's place in its application's audit chain and its hash (0010; core/chain.py).
    seq: int | None = None
    hash: str | None = Field(default=None, max_length=64)


class Outbox(SQLModel, table=True):
    """A rendered notice: queued in the transaction of its move, sent after commit."""

    __tablename__ = "outbox"
    __table_args__ = (
        sa.Index("ix_outbox_state_due", "state", "next_attempt_at"),
        # a move supersedes its application's older notices of a family (0006)
        sa.Index("ix_outbox_application_notice", "application_id", "notice"),
    )
    id: int | None = Field(default=None, primary_key=True)
    # None for a notice of no application: a sign-in link (0011, core/sessions).
    application_id: int | None = Field(default=None, foreign_key="application.id", nullable=True)
    notice: str = Field(max_length=40)
    dedup_key: str = Field(unique=True, max_length=120)
    message_id: str = Field(max_length=200)
    language: str = Field(max_length=2)
    to_addr: str
    subject: str
    body_text: str = Field(sa_type=sa.Text)
    body_html: str = Field(sa_type=sa.Text)
    ics: str | None = Field(default=None, sa_type=sa.Text)  # a calendar attachment, if the notice has one
    # One of the outbox states, declared in gongmo.workflow.outbox.states (stored as text, no check constraint).
    state: str = Field(default="pending", max_length=16)
    attempts: int = 0
    created_at: datetime = utc_field()
    next_attempt_at: datetime = utc_field()
    lease_until: datetime | None = utc_field(nullable=True)
    sent_at: datetime | None = utc_field(nullable=True)
    last_error: str | None = None
    # The notice that superseded this one (0007): a row cancelled before it was sent,
    # or one that was already on the wire (then it says so next to `sent`).
    superseded_by: str | None = Field(default=None, max_length=40)


# The largest id: the primary keys are INTEGER (PostgreSQL refuses a larger bind, SQLite overflows at 2**63).
MAX_ID = 2**31 - 1

APPLICATION = Application.__table__  # type: ignore[attr-defined]
AUDIT = Audit.__table__  # type: ignore[attr-defined]
OUTBOX = Outbox.__table__  # type: ignore[attr-defined]
# What a list of outbox rows shows (not the bodies).
OUTBOX_LIST = tuple(
    OUTBOX.c[c]
    for c in (
        "id",
        "application_id",
        "notice",
        "language",
        "to_addr",
        "state",
        "attempts",
        "subject",
        "created_at",
        "next_attempt_at",
        "sent_at",
        "last_error",
        "superseded_by",
    )
)
TRACK = Track.__table__  # type: ignore[attr-defined]
APPLICANT = Applicant.__table__  # type: ignore[attr-defined]
CONTEST = Contest.__table__  # type: ignore[attr-defined]


class Deadline(SQLModel, table=True):
    """One instant of a calendar and what happens then; fires exactly once.

    A row is claimed with a lease (claimed_by, lease_until) and marked fired
    after its action ran; an expired lease lets another daemon take it over.
    Every action is idempotent, so a takeover after a crash does no harm.
    """

    __tablename__ = "deadline"
    __table_args__ = (sa.Index("ix_deadline_due", "fired_at", "due_at"),)
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=120)
    track_id: int = Field(foreign_key="track.id", index=True)
    application_id: int | None = Field(default=None, foreign_key="application.id")
    action: str = Field(max_length=32)
    milestone: str = Field(max_length=32)
    due_at: datetime = utc_field()
    fired_at: datetime | None = utc_field(nullable=True)
    late: bool | None = None
    attempts: int = 0
    last_error: str | None = None
    claimed_by: str | None = Field(default=None, max_length=80)
    lease_until: datetime | None = utc_field(nullable=True)
    created_at: datetime = utc_field()


class CalendarChange(SQLModel, table=True):
    """Append-only audit of a track's calendar: reschedules and extensions."""

    __tablename__ = "calendar_change"
    id: int | None = Field(default=None, primary_key=True)
    track_id: int = Field(foreign_key="track.id", index=True)
    application_id: int | None = Field(default=None, foreign_key="application.id", index=True)
    milestone: str = Field(max_length=32)
    old_at: datetime = utc_field()
    new_at: datetime = utc_field()
    reason: str
    actor: str
    at: datetime = utc_field()


DEADLINE = Deadline.__table__  # type: ignore[attr-defined]
CALENDAR_CHANGE = CalendarChange.__table__  # type: ignore[attr-defined]


class Evaluator(SQLModel, table=True):
    """A member of the external expert committee."""

    __tablename__ = "evaluator"
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, max_length=200)
    name: str
    affiliation: str
    region: str = Field(max_length=2)  # 시·도 code, e.g. 41
    home_code: str | None = Field(default=None, max_length=10)  # their own local government, if any
    language: str = Field(default="ko", max_length=2)  # the portal's and the sign-in mail's (0013)


class DeclaredConflict(SQLModel, table=True):
    __tablename__ = "declared_conflict"
    __table_args__ = (sa.UniqueConstraint("evaluator_id", "applicant_code", name="uq_declared_conflict"),)
    id: int | None = Field(default=None, primary_key=True)
    evaluator_id: int = Field(foreign_key="evaluator.id", index=True)
    applicant_code: str = Field(max_length=10)
    reason: str
    declared_at: datetime = utc_field()


class Assignment(SQLModel, table=True):
    __tablename__ = "assignment"
    __table_args__ = (sa.UniqueConstraint("application_id", "evaluator_id", name="uq_assignment"),)
    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="application.id", index=True)
    evaluator_id: int = Field(foreign_key="evaluator.id", index=True)
    assigned_at: datetime = utc_field()


class Score(SQLModel, table=True):
    """One evaluator's points on one criterion of one part, in hundredths (exact)."""

    __tablename__ = "score"
    __table_args__ = (sa.UniqueConstraint("application_id", "evaluator_id", "part", "criterion", name="uq_score"),)
    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="application.id", index=True)
    evaluator_id: int = Field(foreign_key="evaluator.id")
    part: str = Field(max_length=16)  # written | presentation
    criterion: str = Field(max_length=32)
    points_x100: int
    entered_at: datetime = utc_field()
    entered_by: str


class Objection(SQLModel, table=True):
    __tablename__ = "objection"
    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="application.id", index=True)
    track_id: int = Field(foreign_key="track.id", index=True)
    filed_at: datetime = utc_field()
    filed_by: str
    grounds: str = Field(sa_type=sa.Text)
    status: str = Field(default="open", max_length=16)  # open | upheld | rejected
    decided_at: datetime | None = utc_field(nullable=True)
    decided_by: str | None = None
    decision: str | None = Field(default=None, sa_type=sa.Text)


class KickoffPlan(SQLModel, table=True):
    """A detailed implementation plan filed by a selected applicant (one row per filing)."""

    __tablename__ = "kickoff_plan"
    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="application.id", index=True)
    round: int
    received_at: datetime = utc_field()
    received_by: str
    status: str = Field(default="received", max_length=16)  # received | returned | approved
    comments: str | None = Field(default=None, sa_type=sa.Text)
    decided_at: datetime | None = utc_field(nullable=True)
    decided_by: str | None = None
    # The plan's file, kept in the blob store (none for a plan received on paper: `kickoff receive`).
    sha256: str | None = Field(default=None, foreign_key="blob.sha256", max_length=64)
    file_name: str | None = None  # as sent, cleaned (states/documents.py clean_name)
    size: int | None = Field(default=None, sa_type=sa.BigInteger)
    file_type: str | None = Field(default=None, max_length=8)  # pdf | hwp | hwpx | docx (from the bytes)


class FundingYear(SQLModel, table=True):
    """The approved funding schedule of a project, by year."""

    __tablename__ = "funding_year"
    __table_args__ = (sa.UniqueConstraint("application_id", "year", name="uq_funding_year"),)
    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="application.id", index=True)
    year: int
    national_krw: int = Field(sa_type=sa.BigInteger)
    local_krw: int = Field(sa_type=sa.BigInteger)


class PresentationSlot(SQLModel, table=True):
    __tablename__ = "presentation_slot"
    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="application.id", unique=True)
    starts_at: datetime = utc_field()
    ends_at: datetime = utc_field()
    place: str


class Event(SQLModel, table=True):
    """Append-only record of every decision that is not a state change:
    checklists, assignments, scores and corrections, objections, slots,
    kickoff plans, selection runs. With the audit table, the whole story."""

    __tablename__ = "event"
    __table_args__ = (sa.Index("ix_event_application", "application_id", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = utc_field()
    actor: str
    role: str = Field(max_length=16)
    track_id: int | None = Field(default=None, foreign_key="track.id", index=True)
    application_id: int | None = Field(default=None, foreign_key="application.id")
    kind: str = Field(max_length=32)
    detail: str = Field(sa_type=sa.Text)
    # The row's place in its chain (application, track or global) and its hash (0010; core/chain.py).
    seq: int | None = None
    hash: str | None = Field(default=None, max_length=64)


EVALUATOR = Evaluator.__table__  # type: ignore[attr-defined]
DECLARED_CONFLICT = DeclaredConflict.__table__  # type: ignore[attr-defined]
ASSIGNMENT = Assignment.__table__  # type: ignore[attr-defined]
SCORE = Score.__table__  # type: ignore[attr-defined]
OBJECTION = Objection.__table__  # type: ignore[attr-defined]
KICKOFF_PLAN = KickoffPlan.__table__  # type: ignore[attr-defined]
FUNDING_YEAR = FundingYear.__table__  # type: ignore[attr-defined]
PRESENTATION_SLOT = PresentationSlot.__table__  # type: ignore[attr-defined]
EVENT = Event.__table__  # type: ignore[attr-defined]


class ChainHead(SQLModel, table=True):
    """The head of a chain no row owns (0010): 'global', the events of no application and no track."""

    __tablename__ = "chain_head"
    kind: str = Field(primary_key=True, max_length=16)
    seq: int = 0
    hash: str | None = Field(default=None, max_length=64)


class AuditAnchor(SQLModel, table=True):
    """An anchor taken (`gongmo audit anchor`): the Merkle root over every chain head (0010)."""

    __tablename__ = "audit_anchor"
    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(unique=True, max_length=64)
    at: datetime = utc_field()
    rows: int = Field(sa_type=sa.BigInteger)  # the audit and event rows it covers
    chains: int


class AuditAnchorHead(SQLModel, table=True):
    """One chain head an anchor covered: verify --anchor recomputes the chain up to `seq`."""

    __tablename__ = "audit_anchor_head"
    anchor_id: int = Field(foreign_key="audit_anchor.id", primary_key=True)
    kind: str = Field(primary_key=True, max_length=16)
    chain_id: int = Field(primary_key=True)
    seq: int
    head: str = Field(max_length=64)


CHAIN_HEAD = ChainHead.__table__  # type: ignore[attr-defined]
AUDIT_ANCHOR = AuditAnchor.__table__  # type: ignore[attr-defined]
AUDIT_ANCHOR_HEAD = AuditAnchorHead.__table__  # type: ignore[attr-defined]


class ApiToken(SQLModel, table=True):
    """An HTTP API token: only its SHA-256 is stored; the token is shown once."""

    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    token_sha256: str = Field(unique=True, max_length=64)
    prefix: str = Field(max_length=16)  # the first characters, to tell tokens apart in lists
    role: str = Field(max_length=16)  # admin | evaluator | applicant
    subject: str = Field(max_length=200)  # a person (admin), an evaluator's e-mail, an applicant's code
    note: str | None = None
    created_at: datetime = utc_field()
    created_by: str
    revoked_at: datetime | None = utc_field(nullable=True)
    last_used_at: datetime | None = utc_field(nullable=True)


API_TOKEN = ApiToken.__table__  # type: ignore[attr-defined]


# -- plan documents (0009) ----------------------------------------------------------------
# A file is stored once, content-addressed by its SHA-256, in chunks of CHUNK_BYTES; a
# document row names one version of one kind of one application's documents.
CHUNK_BYTES = 1024 * 1024


class Blob(SQLModel, table=True):
    """A stored file's bytes, by hash: written once, never changed (documents verify rereads it)."""

    __tablename__ = "blob"
    sha256: str = Field(primary_key=True, max_length=64)
    size: int = Field(sa_type=sa.BigInteger)
    chunks: int
    created_at: datetime = utc_field()


class BlobChunk(SQLModel, table=True):
    __tablename__ = "blob_chunk"
    sha256: str = Field(primary_key=True, foreign_key="blob.sha256", max_length=64)
    seq: int = Field(primary_key=True)  # 0, 1, ...
    data: bytes = Field(sa_type=sa.LargeBinary)


class Document(SQLModel, table=True):
    """One uploaded file of an application: kind, version, the name it was sent with, its hash.
    Append-only but for `current`: a replaced file stays, no longer current."""

    __tablename__ = "document"
    __table_args__ = (
        sa.UniqueConstraint("application_id", "kind", "version", name="uq_document_version"),
        sa.Index("ix_document_application", "application_id", "kind", "current"),
    )
    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="application.id")
    kind: str = Field(max_length=32)
    version: int  # 1, 2, ... per application and kind
    file_name: str  # as sent, cleaned (states/documents.py clean_name)
    size: int = Field(sa_type=sa.BigInteger)
    file_type: str = Field(max_length=8)  # pdf | hwp | hwpx | docx | xlsx | png | jpeg (from the bytes)
    sha256: str = Field(foreign_key="blob.sha256", max_length=64)
    current: bool = True
    uploaded_at: datetime = utc_field()
    actor: str
    role: str = Field(max_length=16)


BLOB = Blob.__table__  # type: ignore[attr-defined]
BLOB_CHUNK = BlobChunk.__table__  # type: ignore[attr-defined]
DOCUMENT = Document.__table__  # type: ignore[attr-defined]


# -- the web console's people and sessions (0011) -------------------------------------------------
# Office staff sign in with an e-mailed one-time link; a session is a server-side row. Only the
# SHA-256 of a link's token and of a session id is stored (both are 32 random bytes).


class Staff(SQLModel, table=True):
    """An office account (ministry or LH staff) that may sign in to the console."""

    __tablename__ = "staff"
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, max_length=200)  # lower case
    name: str | None = None
    role: str = Field(default="admin", max_length=16)
    language: str = Field(default="ko", max_length=2)
    created_at: datetime = utc_field()
    created_by: str
    disabled_at: datetime | None = utc_field(nullable=True)


class SigninLink(SQLModel, table=True):
    """A one-time sign-in link: valid until expires_at, used at most once."""

    __tablename__ = "signin_link"
    id: int | None = Field(default=None, primary_key=True)
    token_sha256: str = Field(unique=True, max_length=64)
    role: str = Field(max_length=16)  # admin (staff); evaluator and applicant for the portals
    subject: str = Field(max_length=200)  # the staff e-mail, the evaluator's e-mail, the applicant's code
    email: str = Field(max_length=200)  # where the link was sent
    created_at: datetime = utc_field()
    expires_at: datetime = utc_field()
    used_at: datetime | None = utc_field(nullable=True)


class WebSession(SQLModel, table=True):
    """A signed-in browser: idle and absolute timeouts, revocable."""

    __tablename__ = "web_session"
    id: int | None = Field(default=None, primary_key=True)
    session_sha256: str = Field(unique=True, max_length=64)
    role: str = Field(max_length=16)
    subject: str = Field(max_length=200)
    created_at: datetime = utc_field()
    last_seen_at: datetime = utc_field()
    expires_at: datetime = utc_field()  # the absolute limit
    revoked_at: datetime | None = utc_field(nullable=True)
    client: str | None = Field(default=None, max_length=64)
    email: str | None = Field(default=None, max_length=200)  # the person it was opened for (0013)


class SigninAttempt(SQLModel, table=True):
    """A sign-in request or link use, for the rate limit per address and per client."""

    __tablename__ = "signin_attempt"
    __table_args__ = (
        sa.Index("ix_signin_attempt_email_at", "email", "at"),
        sa.Index("ix_signin_attempt_client_at", "client", "at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(default="request", max_length=16)  # request (a link asked for) or link (a link used)
    email: str = Field(max_length=200)
    client: str = Field(max_length=64)
    at: datetime = utc_field()
    ok: bool = False


STAFF = Staff.__table__  # type: ignore[attr-defined]
SIGNIN_LINK = SigninLink.__table__  # type: ignore[attr-defined]
WEB_SESSION = WebSession.__table__  # type: ignore[attr-defined]
SIGNIN_ATTEMPT = SigninAttempt.__table__  # type: ignore[attr-defined]


# -- audit verify runs (0012) ---------------------------------------------------------------------
# Each `gongmo audit verify` (and the console's "verify now") stores what it found, so the health
# page can say when the log was last checked and with what result.


class AuditCheck(SQLModel, table=True):
    """One run of `audit verify`: when, by whom, what it walked and what it found."""

    __tablename__ = "audit_check"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = utc_field()
    by: str = Field(max_length=200)  # the signed-in person (console), or the CLI's --actor
    clean: bool
    applications: int
    audit_rows: int = Field(sa_type=sa.BigInteger)
    event_rows: int = Field(sa_type=sa.BigInteger)
    chains: int
    findings: int
    first_finding: str | None = Field(default=None, sa_type=sa.Text)


AUDIT_CHECK = AuditCheck.__table__  # type: ignore[attr-defined]


# -- the contacts of an applicant (0013) ----------------------------------------------------------
# Every person at a local government who signs in to its applicant pages: the applicant row's own
# e-mail and any more the CSV (`contacts`) or `gongmo applicants contact add` names. They all sign
# in to the same applicant (its code): visibility is keyed on the code, the audit names the person.


class ApplicantContact(SQLModel, table=True):
    """A contact person of an applicant: one e-mail (lower case) per applicant at most once."""

    __tablename__ = "applicant_contact"
    __table_args__ = (
        sa.UniqueConstraint("applicant_id", "email", name="uq_applicant_contact"),
        sa.Index("ix_applicant_contact_email", "email"),
    )
    id: int | None = Field(default=None, primary_key=True)
    applicant_id: int = Field(foreign_key="applicant.id")
    email: str = Field(max_length=200)
    name: str | None = None


APPLICANT_CONTACT = ApplicantContact.__table__  # type: ignore[attr-defined]

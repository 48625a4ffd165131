"""config.toml: contests, tracks, calendars, rules, mail, database.

Validated on load with pydantic: a wrong value is refused with the file, the
key path, the value and what is expected, before anything is written.
Calendar times are written in the contest's zone (TOML local date-times, or
with an explicit offset) and held in UTC.
"""

from __future__ import annotations

import os
import tomllib
from datetime import UTC, date, datetime, time
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from notifications.notices import NOTICES
from states.calendar import add_working_days, parse_working_days, reminder_instant
from states.errors import GongmoError
from workflow.closures import Closures

MILESTONES: tuple[str, ...] = (
    "announce_at",
    "receipt_opens",
    "receipt_closes",
    "review_ends",
    "written_starts",
    "written_ends",
    "presentation_starts",
    "presentation_ends",
    "selection_at",
    "kickoff_due",
)

KEY_PATTERN = r"^[a-z0-9][a-z0-9-]{1,39}$"


class ConfigError(GongmoError):
    """The configuration file is unreadable or invalid."""


class Kind(StrEnum):
    """Kinds of Korean local government."""

    SPECIAL_CITY = "special_city"  # 특별시
    METROPOLITAN_CITY = "metropolitan_city"  # 광역시
    SPECIAL_SELF_GOVERNING_CITY = "special_self_governing_city"  # 특별자치시
    PROVINCE = "province"  # 도
    SPECIAL_SELF_GOVERNING_PROVINCE = "special_self_governing_province"  # 특별자치도
    CITY = "city"  # 시
    COUNTY = "county"  # 군
    DISTRICT = "district"  # 자치구


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Calendar(Strict):
    announce_at: AwareDatetime
    receipt_opens: AwareDatetime
    receipt_closes: AwareDatetime
    review_ends: AwareDatetime
    written_starts: AwareDatetime
    written_ends: AwareDatetime
    presentation_starts: AwareDatetime
    presentation_ends: AwareDatetime
    selection_at: AwareDatetime
    kickoff_due: AwareDatetime

    @model_validator(mode="after")
    def _in_order(self) -> Calendar:
        previous: tuple[str, datetime] | None = None
        for name in MILESTONES:
            value = getattr(self, name)
            if previous and value < previous[1]:
                raise ValueError(
                    f"{name} ({value:%Y-%m-%d %H:%M} UTC) comes before {previous[0]}"
                    f" ({previous[1]:%Y-%m-%d %H:%M} UTC); milestones must be in the order"
                    f" {', '.join(MILESTONES)}"
                )
            previous = (name, value)
        if self.receipt_closes == self.receipt_opens:
            raise ValueError("receipt_closes equals receipt_opens: the window would be empty")
        return self

    def items(self) -> list[tuple[str, datetime]]:
        return [(name, getattr(self, name)) for name in MILESTONES]


class Eligibility(Strict):
    kinds: list[Kind] = Field(min_length=1)
    population_below: int | None = Field(default=None, gt=0)
    types: list[str] = Field(default_factory=list)


class Funding(Strict):
    national_cap_krw: int = Field(gt=0, description="total over the program's years, per site")
    national_min_krw: int = Field(default=0, ge=0)
    years: int = Field(ge=1, le=10)
    local_match_ratio: float = Field(default=1.0, ge=0)
    budget_national_krw: int = Field(gt=0, description="the track's national money, all sites")

    @model_validator(mode="after")
    def _consistent(self) -> Funding:
        if self.national_min_krw > self.national_cap_krw:
            raise ValueError(
                f"national_min_krw {self.national_min_krw:,} exceeds national_cap_krw {self.national_cap_krw:,}"
            )
        if self.national_cap_krw > self.budget_national_krw:
            raise ValueError(
                f"national_cap_krw {self.national_cap_krw:,} exceeds budget_national_krw"
                f" {self.budget_national_krw:,}: one site could never be funded"
            )
        return self


class Track(Strict):
    key: str = Field(pattern=KEY_PATTERN)
    name_ko: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    slots: int = Field(ge=1)
    eligibility: Eligibility
    funding: Funding
    calendar: Calendar
    # Before the receipt close, to applicants that have not submitted yet.
    reminders: list[str] = Field(default_factory=lambda: ["D-3 09:00", "D-1 09:00", "-3h"])
    # After kickoff_due: selected applicants without an approved plan are
    # cancelled, and the waitlist lapses, this many days later.
    kickoff_grace_days: int = Field(default=14, ge=0, le=90)
    # Notices that wait in the outbox until `gongmo outbox release TRACK NOTICE`:
    # selection results go out when the ministry publishes them, not before.
    hold_notices: list[str] = Field(default_factory=lambda: ["selected", "waitlisted", "not_selected"])

    @field_validator("hold_notices")
    @classmethod
    def _notices(cls, value: list[str]) -> list[str]:
        unknown = [n for n in value if n not in NOTICES]
        if unknown:
            raise ValueError(f"unknown notice(s) {', '.join(unknown)} (notices: {', '.join(NOTICES)})")
        return value

    @field_validator("reminders")
    @classmethod
    def _reminders(cls, value: list[str]) -> list[str]:
        probe = datetime(2024, 5, 29, 18, tzinfo=UTC)
        for spec in value:
            reminder_instant(spec, probe)  # raises ValueError with the fix
        return value


class Contest(Strict):
    key: str = Field(pattern=KEY_PATTERN)
    name_ko: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    ministry: str
    office: str
    office_phone: str
    portal_url: str
    timezone: str = "Asia/Seoul"
    national_budget_krw: int = Field(gt=0)
    # Days the offices are closed beyond the public holidays (holidays.KR).
    extra_closures: list[date] = Field(default_factory=list)
    tracks: list[Track] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as 'Asia/Seoul')") from None
        return value

    @model_validator(mode="before")
    @classmethod
    def _localise(cls, data: Any) -> Any:
        """Read naive calendar times in the contest's zone and hold them in UTC."""
        if not isinstance(data, dict):
            return data
        try:
            tz = ZoneInfo(str(data.get("timezone", "Asia/Seoul")))
        except (ZoneInfoNotFoundError, ValueError):
            return data  # the field validator reports it
        closures: Closures | None = None
        for track in data.get("tracks") or []:
            cal = track.get("calendar") if isinstance(track, dict) else None
            if not isinstance(cal, dict):
                continue
            resolved = {k: _to_utc(v, tz) for k, v in cal.items()}
            for name in MILESTONES:
                rule = parse_working_days(resolved[name]) if isinstance(resolved.get(name), str) else None
                earlier = MILESTONES[: MILESTONES.index(name)]
                if rule is None or rule[0] not in earlier or not isinstance(resolved.get(rule[0]), datetime):
                    continue  # left as text: pydantic refuses it at its own key path
                if closures is None:
                    closures = _closures(data, resolved)
                base = resolved[rule[0]].astimezone(tz)
                resolved[name] = add_working_days(base, rule[1], closures).astimezone(UTC)
            track["calendar"] = resolved
        return data

    def closures(self) -> Closures:
        years = {at.year for t in self.tracks for _, at in t.calendar.items()}
        return Closures(range(min(years) - 1, max(years) + 2), self.extra_closures)

    @model_validator(mode="after")
    def _budget(self) -> Contest:
        total = sum(t.funding.budget_national_krw for t in self.tracks)
        if total > self.national_budget_krw:
            raise ValueError(
                f"the tracks' budget_national_krw add up to {total:,},"
                f" more than national_budget_krw {self.national_budget_krw:,}"
            )
        keys = [t.key for t in self.tracks]
        dups = sorted({k for k in keys if keys.count(k) > 1})
        if dups:
            raise ValueError(f"track key(s) used twice: {', '.join(dups)}")
        return self


def _closures(data: dict[str, Any], calendar: dict[str, Any]) -> Closures:
    years = {v.year for v in calendar.values() if isinstance(v, datetime)} or {datetime.now(UTC).year}
    extra = [d for d in data.get("extra_closures") or [] if isinstance(d, date)]
    return Closures(range(min(years) - 1, max(years) + 2), extra)


def _to_utc(value: Any, tz: ZoneInfo) -> Any:
    """A TOML date-time (or an ISO string, or a date meaning 00:00) in `tz`, to UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value  # a working-days rule, or pydantic reports it with its key path
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time())
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=tz)
        return value.astimezone(UTC)
    return value


class Settings(Strict):
    environment: Literal["production", "rehearsal", "development"] = "development"
    database_url: str = "sqlite:///var/gongmo.db"
    templates_dir: str = "templates"
    # The daemon: how often it looks for due deadlines (it also wakes at the
    # earliest one), how many it takes per tick, how long a claim holds.
    tick_seconds: float = Field(default=30.0, gt=0, le=3600)
    deadlines_per_tick: int = Field(default=20, ge=1, le=1000)
    lease_seconds: int = Field(default=600, ge=10)
    # A deadline fired later than this after its time is recorded as catch-up.
    on_time_seconds: int = Field(default=120, ge=1)


class SMTP(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=25, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "starttls"
    username: str | None = None
    # The password is never in the file: name the environment variable holding it.
    password_env: str | None = "GONGMO_SMTP_PASSWORD"
    timeout_s: float = Field(default=30.0, gt=0)
    connections: int = Field(default=4, ge=1, le=64)
    local_hostname: str = "gongmo.localdomain"
    ca_file: str | None = None


class Mail(Strict):
    sender: str = "gongmo@localhost"
    transport: Literal["maildir", "smtp"] = "maildir"
    maildir: str = "var/maildir"
    smtp: SMTP = Field(default_factory=SMTP)
    # A row being sent is leased this long; a crashed sender's rows come back after it.
    lease_seconds: int = Field(default=300, ge=10)
    # How often the daemon looks for mail to send.
    deliver_seconds: float = Field(default=5.0, gt=0, le=3600)


class Config(Strict):
    gongmo: Settings = Field(default_factory=Settings)
    mail: Mail = Field(default_factory=Mail)
    contests: list[Contest] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Config:
        contests = [c.key for c in self.contests]
        tracks = [t.key for c in self.contests for t in c.tracks]
        for label, keys in (("contest", contests), ("track", tracks)):
            dups = sorted({k for k in keys if keys.count(k) > 1})
            if dups:
                raise ValueError(f"{label} key(s) used twice: {', '.join(dups)}")
        return self

    def track(self, key: str) -> tuple[Contest, Track]:
        for contest in self.contests:
            for track in contest.tracks:
                if track.key == key:
                    return contest, track
        known = ", ".join(t.key for c in self.contests for t in c.tracks)
        raise ConfigError(f"unknown track '{key}' (tracks in the config: {known})")


class Loaded(BaseModel):
    """A validated config and where it came from."""

    model_config = ConfigDict(frozen=True)
    path: Path
    config: Config
    database_url: str
    templates_dir: Path

    @property
    def production(self) -> bool:
        return self.config.gongmo.environment == "production"


def load(path: Path) -> Loaded:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc.strerror}); pass --config FILE") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe(path, exc)) from None
    base = path.resolve().parent
    url = os.environ.get("GONGMO_DATABASE_URL") or config.gongmo.database_url
    return Loaded(
        path=path,
        config=config,
        database_url=_anchor_sqlite(url, base),
        templates_dir=(base / config.gongmo.templates_dir),
    )


def _anchor_sqlite(url: str, base: Path) -> str:
    """A relative SQLite path is relative to the config file, not the shell."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
        rel = url[len(prefix) :]
        if rel and rel != ":memory:":
            return prefix + str(base / rel)
    return url


def describe(path: Path, exc: ValidationError) -> str:
    """One line per problem: file, key path, value, what is expected."""
    lines = []
    for err in exc.errors():
        loc = _loc(err["loc"])
        value = err.get("input")
        shown = "(missing)" if err["type"] == "missing" else _short(value)
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {loc} = {shown}: {msg}")
    return "\n".join(lines)


def _loc(parts: tuple[int | str, ...]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return "{...}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

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

from states.errors import GongmoError

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
        for track in data.get("tracks") or []:
            cal = track.get("calendar") if isinstance(track, dict) else None
            if isinstance(cal, dict):
                track["calendar"] = {k: _to_utc(v, tz) for k, v in cal.items()}
        return data

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


def _to_utc(value: Any, tz: ZoneInfo) -> Any:
    """A TOML date-time (or an ISO string, or a date meaning 00:00) in `tz`, to UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value  # pydantic reports it with its key path
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


class Mail(Strict):
    sender: str = "gongmo@localhost"
    transport: Literal["maildir", "smtp"] = "maildir"
    maildir: str = "var/maildir"


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

"""config.toml: contests, tracks, calendars, rules, mail, database.

Validated on load with pydantic: a wrong value is refused with the file, the
key path, the value and what is expected, before anything is written. The
contests and their tracks are declared in contest_config.py (their names are
also importable from here); this module holds the file's other tables
([gongmo], [mail], [api]), `load` and the wording of a refusal.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
import unicodedata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from gongmo.states.errors import GongmoError
from gongmo.workflow.core.contest_config import (
    CALENDAR_ORDER,
    KEY_PATTERN,
    MILESTONES,
    OPTIONAL_MILESTONES,
    Contest,
    Kind,
    Refused,
    Strict,
    Track,
    short_value,
)

# The contest's names are importable from here too (config.Track, config.MILESTONES, ...), as before the split.
__all__ = [
    "CALENDAR_ORDER",
    "KEY_PATTERN",
    "MILESTONES",
    "OPTIONAL_MILESTONES",
    "SMTP",
    "Api",
    "Config",
    "ConfigError",
    "Console",
    "Contest",
    "Kind",
    "Loaded",
    "Mail",
    "Settings",
    "Track",
    "describe",
    "load",
]

# A refusal's message (after the key path and value) is cut to this length.
MAX_MESSAGE = 300


class ConfigError(GongmoError):
    """The configuration file is unreadable or invalid."""


class Settings(Strict):
    # Required, no default: a config that forgets it must not run as development (--now honoured).
    environment: Literal["production", "rehearsal", "development"] = Field(default=None, validate_default=True)
    database_url: str = "sqlite:///var/gongmo.db"
    templates_dir: str = "templates"
    # The daemon: how often it looks for due deadlines (it also wakes at the
    # earliest one), how many it takes per tick, how long a claim holds.
    tick_seconds: float = Field(default=30.0, gt=0, le=3600)
    deadlines_per_tick: int = Field(default=20, ge=1, le=1000)
    lease_seconds: int = Field(default=600, ge=10)
    # A deadline fired later than this after its time is recorded as catch-up.
    on_time_seconds: int = Field(default=120, ge=1)
    # The largest CSV an import reads (refused in one line before reading past it).
    max_csv_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, le=2**31)

    @field_validator("environment", mode="before")
    @classmethod
    def _environment_given(cls, value: Any) -> Any:
        if value is None:
            raise PydanticCustomError(
                "missing",
                'required: write environment = "production", "rehearsal" or "development" under [gongmo]'
                " (production refuses --now, SMTP passwords in clear, a public API host and the Maildir)",
            )
        return value

    # PostgreSQL: a window check takes now = max(this process's clock, the
    # database's); a warning is logged when they differ by more than this.
    max_clock_skew_s: float = Field(default=5.0, gt=0, le=3600)
    # An announcement caught up after its track's receipt close: "hold" keeps it
    # unfired (and /healthz degraded) until the office decides (`gongmo deadlines
    # --fire KEY` or `--skip KEY`); "send" sends the call anyway.
    late_announcements: Literal["hold", "send"] = "hold"
    # SIGTERM: the daemon stops claiming, lets the chunk in hand commit, gives
    # back its deadline leases and exits within this many seconds.
    stop_timeout_s: float = Field(default=20.0, gt=0, le=3600)


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
    # /healthz calls delivery stalled (degraded) when mail has been due for more than
    # this many x deliver_seconds and no delivery pass got through in that time.
    stall_factor: int = Field(default=12, ge=2, le=10_000)


class Api(Strict):
    """The HTTP API, served by `gongmo daemon`."""

    enabled: bool = True
    # Loopback by default: put a TLS-terminating proxy in front to expose it.
    host: str = "127.0.0.1"
    port: int = Field(default=8470, ge=0, le=65535)  # 0: any free port (tests)
    # Rows per page when a list request names no limit (and the most it may ask).
    page_size: int = Field(default=50, ge=1, le=1000)
    max_page_size: int = Field(default=500, ge=1, le=10_000)
    # /healthz (no token) shows the worker's host name and process id only when true.
    health_details: bool = False
    # The largest request body taken (413 past it); read only after the token is checked.
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)


class Console(Strict):
    """The web console (served with the API): who may sign in, and the address its links name."""

    # Staff accounts (role admin) that `gongmo init` creates if missing; `gongmo staff add` adds others.
    staff: list[str] = Field(default_factory=list)
    # The console's address as a person's browser reaches it: the sign-in links in mails start with it.
    # None: http://127.0.0.1:<[api] port>. Never taken from a request's Host header (a forged Host
    # would mail a link to another site).
    base_url: str | None = None

    @field_validator("staff")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        found = [v.strip().lower() for v in value]
        for email in found:
            local, at, domain = email.partition("@")
            if not (local and at and "." in domain) or any(c.isspace() for c in email):
                raise ValueError(f'{email!r} is not an e-mail address: write e.g. "office@molit.go.kr"')
        return found

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")) or len(value.split("/")) > 4 or "?" in value:
            raise ValueError('write the console\'s address, e.g. "https://gongmo.molit.go.kr"')
        return value.rstrip("/")


class Config(Strict):
    gongmo: Settings = Field(default_factory=Settings)
    mail: Mail = Field(default_factory=Mail)
    api: Api = Field(default_factory=Api)
    console: Console = Field(default_factory=Console)
    contests: list[Contest] = Field(min_length=1)

    def console_url(self) -> str:
        """Where a person's browser reaches the console (the sign-in links start with it)."""
        return self.console.base_url or f"http://127.0.0.1:{self.api.port or 8470}"

    @model_validator(mode="before")
    @classmethod
    def _gongmo_table(cls, data: Any) -> Any:
        """No [gongmo] table is a table without `environment`: refused by name, not run as development."""
        if isinstance(data, dict) and "gongmo" not in data:
            return {**data, "gongmo": {}}
        return data

    @model_validator(mode="after")
    def _production(self) -> Config:
        """A production config refuses the settings meant for development, each on a line of its own."""
        if self.gongmo.environment != "production":
            return self
        prod = 'gongmo.environment = "production"'
        found: list[InitErrorDetails] = []

        def refuse(loc: tuple[str, ...], value: Any, message: str) -> None:
            found.append(InitErrorDetails(type=PydanticCustomError("production", message), loc=loc, input=value))

        smtp = self.mail.smtp
        if self.mail.transport == "maildir":
            refuse(
                ("mail", "transport"),
                "maildir",
                f'{prod} sends real notices: use transport = "smtp" (a Maildir keeps them on this machine'
                " while the outbox marks them sent; it is for rehearsal and development)",
            )
        if smtp.security == "none" and smtp.username:
            refuse(
                ("mail", "smtp", "security"),
                "none",
                f"{prod} does not send the password of username = {smtp.username!r} in clear:"
                ' use security = "starttls" or "tls"',
            )
        if self.api.enabled and not _loopback(self.api.host):
            refuse(
                ("api", "host"),
                self.api.host,
                f'{prod} serves the API on loopback only: set host = "127.0.0.1" and put a TLS-terminating'
                " reverse proxy on this machine in front of it (see the README)",
            )
        if found:
            raise ValidationError.from_exception_data("Config", found)
        return self

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
        raise ConfigError(
            f"{path}: cannot read the config ({exc.strerror}); pass {{field}} FILE", field="config", value=str(path)
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {_not_utf8(raw, exc.start)}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
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


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _not_utf8(raw: bytes, at: int) -> str:
    """Where the first byte that is not UTF-8 is, as a line and column (the bytes before it decode)."""
    before = raw[:at]
    line = before.count(b"\n") + 1
    column = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", errors="replace")) + 1
    return f"byte 0x{raw[at]:02x} at line {line}, column {column} is not UTF-8: save the file as UTF-8"


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
        if isinstance(value, Refused):
            value = value.value
        shown = "(missing)" if err["type"] == "missing" else short_value(value)
        msg = _escaped(err["msg"].removeprefix("Value error, "))
        if len(msg) > MAX_MESSAGE:  # keep the start and the fix at the end
            msg = msg[: MAX_MESSAGE // 2 - 3] + " ... " + msg[-(MAX_MESSAGE // 2 - 2) :]
        lines.append(f"{path}: {loc} = {shown}: {msg}")
    return "\n".join(lines)


def _loc(parts: tuple[int | str, ...]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if _escaped(part) == part else repr(part)  # 'a\nb': one line per problem
            out += f".{name}" if out else name
    return out or "(top level)"


def _escaped(text: str) -> str:
    """`text` with its control characters and line separators escaped as repr() does ('\\n')."""
    return "".join(repr(ch)[1:-1] if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in text)

"""Render notices from templates/{language}/{notice}.txt and .html.

The .txt file holds two blocks, `subject` and `text`; the .html file holds
the HTML body (autoescaped). A deployment's own templates directory (the
config's `templates_dir`) overrides gongmo's packaged templates file by file:
each file is looked up there first, then among the packaged ones, and a
missing own directory is fine. Templates are admin-edited data, so they run in
Jinja2's immutable sandbox with StrictUndefined: a missing or misspelt
variable is an error when rendering, never an empty string in a mail.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateSyntaxError,
    meta,
    pass_context,
)
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from gongmo import defaults_dir
from gongmo.notifications.notices import LANGUAGES, NOTICES, SAMPLE

WEEKDAYS = {
    "ko": ("월", "화", "수", "목", "금", "토", "일"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}

MILESTONES = {
    "ko": {
        "announce_at": "공모 공고",
        "receipt_opens": "접수 시작",
        "receipt_closes": "접수 마감",
        "review_ends": "예비검토 종료",
        "written_starts": "서면평가 시작",
        "written_ends": "서면평가 종료",
        "presentation_starts": "발표평가 시작",
        "presentation_ends": "발표평가 종료",
        "selection_at": "선정 발표",
        "kickoff_due": "세부 실시계획 제출 기한",
    },
    "en": {
        "announce_at": "announcement",
        "receipt_opens": "receipt opens",
        "receipt_closes": "receipt closes",
        "review_ends": "end of preliminary review",
        "written_starts": "written evaluation starts",
        "written_ends": "written evaluation ends",
        "presentation_starts": "presentation evaluation starts",
        "presentation_ends": "presentation evaluation ends",
        "selection_at": "announcement of the selection",
        "kickoff_due": "deadline for the implementation plan",
    },
}

TZ_KEY = "_tz"
SUFFIXES = (".txt", ".html")
Origin = Literal["own", "packaged", "missing"]


class TemplateProblem(Exception):
    """A template is missing, does not parse, or uses an undeclared name."""


@dataclass(frozen=True)
class Source:
    """Where one template file of a notice comes from: the deployment's own directory, gongmo's
    packaged templates, or nowhere (`path` is then where an own file would go)."""

    notice: str
    language: str
    suffix: str
    path: Path
    origin: Origin


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def format_krw(amount: int, language: str) -> str:
    """16_000_000_000 -> '160억 원' (ko) or 'KRW 16.0 billion' (en)."""
    if language == "ko":
        eok, rest = divmod(int(amount), 100_000_000)
        if eok and not rest:
            return f"{eok:,}억 원"
        return f"{int(amount):,}원"
    if amount % 100_000_000 == 0:
        return f"KRW {amount / 1_000_000_000:,.1f} billion"
    if amount % 10_000_000 == 0:
        return f"KRW {amount / 1_000_000_000:,.2f} billion"
    return f"KRW {int(amount):,}"  # never a rounded amount


@functools.lru_cache(maxsize=4096)
def format_when(value: datetime, language: str, tz: ZoneInfo) -> str:
    """A deadline as the reader's calendar shows it. Cached: a bulk move renders
    the same few deadlines of one track into every notice."""
    local = value.astimezone(tz)
    day = WEEKDAYS[language][local.weekday()]
    zone = local.tzname() or tz.key
    return f"{local:%Y-%m-%d} ({day}) {local:%H:%M} {zone}"


def packaged_templates() -> Path:
    """gongmo's own templates: in the wheel's package data, or the repository's templates/."""
    return defaults_dir() / "templates"


def _environment(search: list[Path], language: str) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        # Not reloaded while running: the daemon checks every template as it
        # starts, and an edit takes effect at the next start (after `gongmo
        # templates check`), never as a half-saved file in the middle of a
        # close. It also spares two stat() calls a notice.
        auto_reload=False,
        # the first directory holding a file wins; a missing directory is skipped
        loader=FileSystemLoader([str(base / language) for base in search]),
        undefined=StrictUndefined,
        autoescape=lambda name: bool(name and name.endswith(".html")),
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )

    @pass_context
    def when(ctx: Context, value: datetime) -> str:
        return format_when(value, language, ZoneInfo(ctx[TZ_KEY]))

    env.filters["when"] = when
    env.filters["krw"] = lambda amount: format_krw(amount, language)
    env.filters["milestone"] = lambda key: MILESTONES[language].get(key, key)
    return env


class Renderer:
    def __init__(self, templates_dir: Path, packaged: Path | None = None) -> None:
        """`templates_dir` is the deployment's own directory; `packaged` fills in the files it
        lacks (default: gongmo's packaged templates; pass the own directory itself for none)."""
        self.templates_dir = templates_dir
        self.packaged = packaged_templates() if packaged is None else packaged
        if _same_dir(templates_dir, self.packaged):
            self._search = [self.packaged]  # the config names the packaged templates themselves
        else:
            self._search = [templates_dir, self.packaged]
        self._envs = {lang: _environment(self._search, lang) for lang in LANGUAGES}
        self._templates: dict[tuple[str, str], tuple[Template, dict[str, Any]]] = {}

    def source(self, notice: str, language: str, suffix: str) -> Source:
        """The file that renders this notice's `suffix` part in `language`, and where it comes from."""
        for base in self._search:
            path = base / language / f"{notice}{suffix}"
            if path.is_file():
                origin: Origin = "packaged" if base is self.packaged else "own"
                return Source(notice, language, suffix, path, origin)
        return Source(notice, language, suffix, self.templates_dir / language / f"{notice}{suffix}", "missing")

    def sources(self) -> list[Source]:
        """Every notice's files, in the notices' order, ko before en, .txt before .html."""
        return [
            self.source(notice.key, language, suffix)
            for notice in NOTICES.values()
            for language in LANGUAGES
            for suffix in SUFFIXES
        ]

    def source_lines(self) -> list[str]:
        """What `gongmo templates check` prints: the two directories, then one line per notice,
        its name and its ko and en files, each marked (own), (packaged) or (missing)."""
        own = self.templates_dir if self._search[0] is not self.packaged else None
        lines = [
            f"own templates:      {own if own is not None else '(none: the config names the packaged ones)'}"
            + ("" if own is None or own.is_dir() else " (no such folder: the packaged ones are used)"),
            f"packaged templates: {self.packaged}",
        ]
        by_notice: dict[str, list[Source]] = {}
        for src in self.sources():
            by_notice.setdefault(src.notice, []).append(src)
        cells = {name: [_pair(srcs, lang) for lang in LANGUAGES] for name, srcs in by_notice.items()}
        width = max(len(name) for name in cells)
        first = max(len(row[0]) for row in cells.values())
        lines += [f"{name:<{width}}  {row[0]:<{first}}  {'  '.join(row[1:])}" for name, row in cells.items()]
        return lines

    def render(self, notice: str, language: str, values: Mapping[str, Any], timezone: str) -> Rendered:
        if language not in self._envs:
            language = "ko"
        context = {**values, TZ_KEY: timezone}
        subject, text = self._render_txt(language, notice, context)
        html = self._render_html(language, notice, context)
        if "\n" in subject or "\r" in subject:
            raise TemplateProblem(f"{self.source(notice, language, '.txt').path}:1: the subject must be one line")
        return Rendered(subject=subject, text=text, html=html)

    # What Template.render does, from a template held with its globals flattened once (iterating their
    # ChainMap on every render was a third of the time) and no look-up in the environment's cache.

    def _render_txt(self, language: str, notice: str, context: Mapping[str, Any]) -> tuple[str, str]:
        """The .txt file's subject and text blocks."""
        env = self._envs[language]
        template, flat = self._template(language, f"{notice}.txt")
        try:
            ctx = template.new_context({**flat, **context}, shared=True)
            subject = "".join(template.blocks["subject"](ctx)).strip()
            text = "".join(template.blocks["text"](ctx)).strip() + "\n"
        except Exception:
            # Blocks called directly skip Jinja's traceback rewriting; this
            # maps the error back to the template's file and line.
            env.handle_exception()
        return subject, text

    def _render_html(self, language: str, notice: str, context: Mapping[str, Any]) -> str:
        env = self._envs[language]
        template, flat = self._template(language, f"{notice}.html")
        try:
            return env.concat(template.root_render_func(template.new_context({**flat, **context}, shared=True)))
        except Exception:
            env.handle_exception()

    def _template(self, language: str, name: str) -> tuple[Template, dict[str, Any]]:
        """A template file, loaded once (templates are not reloaded while running: _environment), and
        its globals as one dict."""
        key = (language, name)
        found = self._templates.get(key)
        if found is None:
            template = self._envs[language].get_template(name)
            found = self._templates[key] = (template, dict(template.globals))
        return found

    def check(self) -> list[str]:
        """Every problem of every template, one line each; empty when all is well."""
        problems: list[str] = []
        for language in LANGUAGES:
            for notice in NOTICES.values():
                problems.extend(self._check_one(language, notice.key, notice.allowed))
        return problems

    def _check_one(self, language: str, notice: str, allowed: frozenset[str]) -> list[str]:
        env = self._envs[language]
        problems: list[str] = []
        for suffix in SUFFIXES:
            name = f"{notice}{suffix}"
            found = self.source(notice, language, suffix)
            path = found.path
            if found.origin == "missing":
                problems.append(f"{path}: missing (every notice needs {language}/{notice}.txt and .html)")
                continue
            source = path.read_text(encoding="utf-8")
            try:
                parsed = env.parse(source, name=name, filename=str(path))
            except TemplateSyntaxError as exc:
                problems.append(f"{path}:{exc.lineno}: {exc.message}")
                continue
            unknown = meta.find_undeclared_variables(parsed) - allowed
            for var in sorted(unknown):
                line = _line_of(source, var)
                problems.append(
                    f"{path}:{line}: '{var}' is not a variable of notice '{notice}'"
                    f" (allowed: {', '.join(sorted(allowed))})"
                )
            if suffix == ".txt":
                blocks = set(parsed.find_all(_block_node()))
                names = {b.name for b in blocks}
                for need in ("subject", "text"):
                    if need not in names:
                        problems.append(f"{path}:1: needs a {{% block {need} %}}")
        if problems:
            return problems
        sample = {k: SAMPLE[k] for k in allowed}
        context = {**sample, TZ_KEY: "Asia/Seoul"}
        for suffix in SUFFIXES:
            path = self.source(notice, language, suffix).path
            try:
                if suffix == ".txt":
                    subject, _ = self._render_txt(language, notice, context)
                    if "\n" in subject or "\r" in subject:
                        problems.append(f"{path}:1: the subject must be one line")
                else:
                    self._render_html(language, notice, context)
            except Exception as exc:  # any error of a template is a problem to report, not a crash
                problems.append(f"{path}:{_traceback_line(exc)}: {type(exc).__name__}: {exc}")
        return problems


def _same_dir(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _pair(sources: list[Source], language: str) -> str:
    """`ko/x.{txt,html} (packaged)`, or each file on its own when they come from two places."""
    txt, html = (s for s in sources if s.language == language)
    if txt.origin == html.origin:
        return f"{language}/{txt.notice}.{{txt,html}} ({txt.origin})"
    return f"{language}/{txt.notice}.txt ({txt.origin}), .html ({html.origin})"


def _block_node() -> Any:
    from jinja2 import nodes

    return nodes.Block


def _line_of(source: str, word: str) -> int:
    for number, line in enumerate(source.splitlines(), start=1):
        if word in line:
            return number
    return 1


def _traceback_line(exc: BaseException) -> int | str:
    tb = exc.__traceback__
    line: int | str = "?"
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith((".txt", ".html")):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line

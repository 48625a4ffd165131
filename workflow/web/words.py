"""The console's own words (labels, headings, buttons), Korean first and English.

State names come from states/lifecycle (label_ko, label_en) and the wording of decisions and
reasons from notifications/reasons: the same catalogue as the notices. A page module registers
its own words with `register({...})` at import; a key registered twice with different words is
an error (two modules would show one key two ways).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gongmo.states.lifecycle import APPLICATION as LIFECYCLE

WORDS: dict[str, tuple[str, str]] = {
    "app.name": ("공모 운영", "gongmo console"),
    "nav.contests": ("공모 현황", "Contests"),
    "nav.deadlines": ("일정", "Deadlines"),
    "nav.outbox": ("발송함", "Outbox"),
    "nav.health": ("상태", "Health"),
    "nav.signout": ("로그아웃", "Sign out"),
    "nav.language": ("English", "한국어"),
    "nav.skip": ("본문 바로가기", "Skip to content"),
    "error.title": ("요청을 처리하지 못했습니다", "The request was refused"),
    "error.back": ("이전 페이지로", "Back"),
    "signin.title": ("로그인", "Sign in"),
}


def register(words: Mapping[str, tuple[str, str]]) -> None:
    for key, pair in words.items():
        known = WORDS.get(key)
        if known is not None and known != pair:
            raise ValueError(f"console word {key!r} registered twice with different words: {known} and {pair}")
        WORDS[key] = pair


def translator(lang: str) -> Callable[..., str]:
    index = 1 if lang == "en" else 0

    def t(key: str, **values: Any) -> str:
        pair = WORDS.get(key)
        if pair is None:
            raise KeyError(f"no console word {key!r}: register it in its page module")
        text = pair[index]
        return text.format(**values) if values else text

    return t


def state_label(lang: str) -> Callable[[str | None], str]:
    """A state's name in the page's language (states/lifecycle's label_ko/label_en); an unknown
    state as it is, none as ''."""

    def label(state: str | None) -> str:
        if not state:
            return ""
        try:
            spec = LIFECYCLE.state(state)
        except KeyError:
            return state
        return spec.label_ko if lang == "ko" else spec.label_en

    return label

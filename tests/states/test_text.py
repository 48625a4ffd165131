"""The free-text rule (states/text.py): line breaks and tabs, and no other control character."""

from __future__ import annotations

import pytest

from gongmo.states.text import control_char, problem


@pytest.mark.parametrize("code", [*range(0x20), 0x7F])
def test_every_control_character_but_tab_and_line_break_is_refused_by_name(code: int) -> None:
    value = f"사유{chr(code)}끝"
    if chr(code) in "\t\n":
        assert control_char(value) is None and problem(value) is None
    else:
        assert problem(value) == f"has {control_char(value)}; delete it"
        assert f"U+{code:04X}" in (control_char(value) or "")


def test_the_names_a_person_recognises() -> None:
    assert control_char("a\x00") == "a control character (U+0000, NUL)"
    assert control_char("a\r\nb") == "a control character (U+000D, carriage return)"
    assert control_char("\x1b[31m") == "a control character (U+001B, escape)"
    assert control_char("\x7f") == "a control character (U+007F, DEL)"
    assert control_char("\x07") == "a control character (U+0007)"
    assert control_char("서류 미비\n\t(첨부 누락)") is None
    assert control_char("\u2028 and \u0085 are not C0 controls") is None

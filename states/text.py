"""Free text: one rule for every text a person types into gongmo (a reason, grounds, comments, a
title, a note, an actor's name), in the CLI and the HTTP API alike.

A text may hold line breaks (LF, U+000A) and tabs (U+0009): a reason or grounds often run to
several lines. No other control character: not a carriage return (a line break is LF alone), not
NUL (PostgreSQL refuses it even in a look-up), not an escape sequence that would recolour a
terminal, not a bell, not DEL. A refusal names the character, never a regular expression.
"""

from __future__ import annotations

import re

# What a free text may hold below U+0020: a tab and a line break.
ALLOWED_CONTROLS = "\t\n"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
NAMES = {
    0x00: "NUL",
    0x09: "tab",
    0x0A: "line break",
    0x0D: "carriage return",
    0x1B: "escape",
    0x7F: "DEL",
}


def control_char(value: str) -> str | None:
    """'a control character (U+000D, carriage return)' for the first character the rule refuses, or None."""
    found = CONTROL.search(value)
    if found is None:
        return None
    return describe(ord(found[0]))


def describe(code: int) -> str:
    name = NAMES.get(code)
    return f"a control character (U+{code:04X}{', ' + name if name else ''})"


def problem(value: str) -> str | None:
    """What is wrong with `value` as free text, with the fix: 'has a control character (U+0000, NUL);
    delete it', or None if the rule takes it."""
    what = control_char(value)
    return None if what is None else f"has {what}; delete it"

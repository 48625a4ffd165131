"""Per-track questions: an applicant's answers, checked and normalised (pure, no I/O).

A track asks questions with a plan (config.toml: [[tracks.questions]]); each
answer is given with the submission and may be changed until the close. This
module takes a question (anything shaped like `QuestionSpec`, the config's
pydantic model in practice) and a value as an interface hands it over (JSON
from the API, a string from the CLI) and returns the answer normalised to
plain JSON-able Python, or refuses it with an `InvalidInput` whose message
starts `answer '<key>'`, says what is wrong and how to fix it, and whose field
is `answers.<key>`.

What each type takes, and what it is stored as:
  text     a string; stripped, NFC, not empty, at most `max_length` characters,
           no control character but line break and tab           -> str
  number   an int, float, Decimal or numeric string ("1,500" too); finite,
           within minimum..maximum (inclusive)                     -> int when whole,
           else the exact decimal as a string ("2.5"): JSON never rounds it
  yes_no   true/false, or "yes"/"no"/"true"/"false" (any case)    -> bool
  choice   one of the options                                     -> str
  choices  a list of options (or "a,b" from a command line); at least one,
           none unknown, none twice                                -> list[str], in the config's order
  members  a list of 1..max_members objects {name, kind, brn}: a name (at
           most 200 characters), a kind from member_kinds, and a Korean
           business registration number (사업자등록번호) whose check digit
           holds; no number twice                                 -> list of {"name", "kind", "brn": "XXX-XX-XXXXX"}

`validate_all` checks one submission's answers against its track's questions;
`describe` gives an answer as a short line for a checklist or a listing.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Protocol

from gongmo.states.errors import InvalidInput
from gongmo.states.text import problem as text_problem

TYPES = ("text", "number", "yes_no", "choice", "choices", "members")
MEMBER_NAME_MAX = 200
MEMBER_FIELDS = ("name", "kind", "brn")
# A number larger than this (10^18) is a typo, whatever the question's maximum; it also keeps a
# "1e999999" from becoming a million-digit int.
NUMBER_DIGITS = 18
BRN_WEIGHTS = (1, 3, 7, 1, 3, 7, 1, 3, 5)
BRN_EXAMPLE = "220-81-62517"
YES = ("yes", "true")
NO = ("no", "false")
_BRN = re.compile(r"^(\d{3})-?(\d{2})-?(\d{5})$")
_GROUPED = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")  # 1,500,000 or 1,500.5


class QuestionSpec(Protocol):
    """A question as config.toml declares it (workflow/core/contest_config.py: Question)."""

    @property
    def key(self) -> str: ...
    @property
    def text_ko(self) -> str: ...
    @property
    def text_en(self) -> str: ...
    @property
    def type(self) -> str: ...  # one of TYPES
    @property
    def required(self) -> bool: ...
    @property
    def max_length(self) -> int: ...  # text, in characters
    @property
    def minimum(self) -> Decimal | None: ...  # number, inclusive
    @property
    def maximum(self) -> Decimal | None: ...
    @property
    def options(self) -> Sequence[str]: ...  # choice, choices
    @property
    def member_kinds(self) -> Sequence[str]: ...  # members
    @property
    def max_members(self) -> int: ...


class AnswerRuleSpec(Protocol):
    """An eligibility rule on an answer (contest_config.py: AnswerRule): exactly one of
    `equals` (the answer equals it; for a choices question, the answer includes it) and
    `members_include` (at least one member of each kind) is set."""

    @property
    def question(self) -> str: ...
    @property
    def equals(self) -> bool | str | int | None: ...
    @property
    def members_include(self) -> Sequence[str]: ...


def validate(question: QuestionSpec, value: object) -> object:
    """`value` as the answer to `question`, normalised (see the module's table), or InvalidInput."""
    check = _CHECKS.get(question.type)
    if check is None:  # the config validates the type; this is a programming error
        raise ValueError(f"question {question.key}: unknown type {question.type!r} (one of {', '.join(TYPES)})")
    return check(question, value)


def validate_all(
    questions: Sequence[QuestionSpec], answers: Mapping[str, object], *, complete: bool
) -> dict[str, object]:
    """A submission's answers, each validated; keys in the track's question order.

    A key that is not one of the track's questions is refused, naming the questions. A None
    value removes an answer: it is kept as None in the result (the caller deletes the stored
    answer), and refused for a required question when `complete`. With complete=True,
    `answers` is the whole set (the caller merges stored answers with new ones first) and
    every required question must have one.
    """
    by_key = {q.key: q for q in questions}
    for key in answers:
        if key not in by_key:
            asked = ", ".join(by_key) or "(none: this track asks no questions)"
            raise InvalidInput(
                f"answer '{key}' is not a question of this track; its questions are: {asked}",
                field=f"answers.{key}",
                value=key,
            )
    out: dict[str, object] = {}
    for q in questions:
        if q.key in answers:
            value = answers[q.key]
            out[q.key] = None if value is None else validate(q, value)
        if complete and q.required and out.get(q.key) is None:
            raise InvalidInput(
                f"answer '{q.key}' is required: {_hint(q)} ({q.text_en})",
                field=f"answers.{q.key}",
            )
    return out


def describe(question: QuestionSpec, value: object) -> str:
    """An answer as a short line: 'yes', '1,500', 'a, b', '3 members: local_government 1, ...'."""
    if value is None:
        return "(no answer)"
    kind = question.type
    if kind == "yes_no":
        return "yes" if value is True else "no" if value is False else str(value)
    if kind == "number":
        return _show_number(value)
    if kind == "choices" and isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "(none chosen)"
    if kind == "members" and isinstance(value, (list, tuple)):
        kinds = Counter(str(m.get("kind")) if isinstance(m, Mapping) else "?" for m in value)
        order = [k for k in question.member_kinds if k in kinds] + sorted(set(kinds) - set(question.member_kinds))
        noun = "member" if len(value) == 1 else "members"
        return f"{len(value)} {noun}" + (": " + ", ".join(f"{k} {kinds[k]}" for k in order) if order else "")
    if kind == "text":
        one_line = " ".join(str(value).split())
        return one_line if len(one_line) <= 60 else one_line[:59] + "…"
    return str(value)


def brn_check_digit(first_nine: str) -> int:
    """The check digit of a business registration number (사업자등록번호) from its first nine digits."""
    digits = [int(c) for c in first_nine]
    total = sum(d * w for d, w in zip(digits, BRN_WEIGHTS, strict=True)) + digits[8] * 5 // 10
    return (10 - total % 10) % 10


def normalise_brn(value: str) -> str | None:
    """'2208162517' or '220-81-62517' as '220-81-62517' when its check digit holds, else None."""
    found = _BRN.match(value.strip())
    if found is None:
        return None
    digits = "".join(found.groups())
    if brn_check_digit(digits[:9]) != int(digits[9]):
        return None
    return "-".join(found.groups())


# -- one function per type --------------------------------------------------------------------------


def _refuse(question: QuestionSpec, what: str, value: object = None) -> InvalidInput:
    return InvalidInput(f"answer '{question.key}': {what}", field=f"answers.{question.key}", value=value)


def _text(question: QuestionSpec, value: object) -> str:
    if not isinstance(value, str):
        raise _refuse(question, f"give text, not {_kind_of(value)}", value)
    text = unicodedata.normalize("NFC", value.strip())
    if not text:
        raise _refuse(question, "is empty; write the answer, or leave the question out if it is optional", value)
    if len(text) > question.max_length:
        raise _refuse(
            question,
            f"{len(text):,} characters, at most {question.max_length:,}; shorten it",
            value,
        )
    bad = text_problem(text)
    if bad is not None:
        raise _refuse(question, f"the text {bad}", value)
    return text


def _number(question: QuestionSpec, value: object) -> int | str:
    amount = _decimal(value)
    if amount is None:
        raise _refuse(question, f"{_shown(value)} is not a number; give digits, e.g. 12 or 2.5", value)
    if not amount.is_finite():
        raise _refuse(question, f"{_shown(value)} is not a finite number; give digits, e.g. 12 or 2.5", value)
    if amount != 0 and amount.adjusted() >= NUMBER_DIGITS:
        raise _refuse(question, f"{_shown(value)} is too large (10^{NUMBER_DIGITS} or more); check the digits", value)
    low, high = question.minimum, question.maximum
    if (low is not None and amount < low) or (high is not None and amount > high):
        raise _refuse(question, f"{_show_number(amount)} is outside the range; give {_range(question)}", value)
    return _plain(amount)


def _yes_no(question: QuestionSpec, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in YES:
            return True
        if word in NO:
            return False
    raise _refuse(question, f"{_shown(value)} is not yes or no; give true or false (yes or no)", value)


def _choice(question: QuestionSpec, value: object) -> str:
    if not isinstance(value, str):
        raise _refuse(question, f"give one option, not {_kind_of(value)}; one of {', '.join(question.options)}", value)
    option = value.strip()
    if option not in question.options:
        raise _refuse(question, f"{_shown(option)} is not an option; give one of {', '.join(question.options)}", value)
    return option


def _choices(question: QuestionSpec, value: object) -> list[str]:
    if isinstance(value, str):  # a command line's "a,b"
        value = [part for part in (p.strip() for p in value.split(",")) if part]
    if not isinstance(value, (list, tuple)):
        raise _refuse(question, f"give a list of options, not {_kind_of(value)}", value)
    if not value:
        raise _refuse(question, f"no option given; choose at least one of {', '.join(question.options)}", value)
    given: list[str] = []
    for item in value:
        option = item.strip() if isinstance(item, str) else item
        if not isinstance(option, str) or option not in question.options:
            raise _refuse(
                question, f"{_shown(option)} is not an option; choose from {', '.join(question.options)}", value
            )
        if option in given:
            raise _refuse(question, f"{_shown(option)} is given twice; give each option once", value)
        given.append(option)
    return [o for o in question.options if o in given]


def _members(question: QuestionSpec, value: object) -> list[dict[str, str]]:
    kinds = ", ".join(question.member_kinds)
    example = f'[{{"name": "...", "kind": "{question.member_kinds[0] if question.member_kinds else "..."}", '
    example += f'"brn": "{BRN_EXAMPLE}"}}, ...]'
    if not isinstance(value, (list, tuple)):
        raise _refuse(question, f"give a list of members, not {_kind_of(value)}, e.g. {example}", value)
    if not value:
        raise _refuse(question, f"no member given; list at least one, e.g. {example}", value)
    if len(value) > question.max_members:
        raise _refuse(question, f"{len(value)} members, at most {question.max_members}; list fewer", value)
    out: list[dict[str, str]] = []
    seen: dict[str, int] = {}
    for n, member in enumerate(value, start=1):
        at = f"member {n}"
        if not isinstance(member, Mapping):
            raise _refuse(question, f"{at} is {_kind_of(member)}; give an object, e.g. {example}", value)
        extra = sorted(str(k) for k in member if k not in MEMBER_FIELDS)
        if extra:
            raise _refuse(question, f"{at} has {', '.join(extra)}; a member has only name, kind and brn", value)
        name = member.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _refuse(question, f"{at} has no name; give the organisation's name", value)
        name = unicodedata.normalize("NFC", name.strip())
        if len(name) > MEMBER_NAME_MAX:
            raise _refuse(question, f"{at}'s name has {len(name)} characters, at most {MEMBER_NAME_MAX}", value)
        bad = text_problem(name)
        if bad is None and ("\n" in name or "\t" in name):
            bad = "has a line break or tab; write the name on one line"
        if bad is not None:
            raise _refuse(question, f"{at}'s name {bad}", value)
        kind = member.get("kind")
        if not isinstance(kind, str) or kind.strip() not in question.member_kinds:
            raise _refuse(question, f"{at}'s kind {_shown(kind)} is not one of {kinds}; give one of them", value)
        brn = member.get("brn")
        if not isinstance(brn, str):
            raise _refuse(
                question,
                f"{at} has no business registration number; give it as text, e.g. {BRN_EXAMPLE}",
                value,
            )
        normal = normalise_brn(brn)
        if normal is None:
            what = "fails its check digit" if _BRN.match(brn.strip()) else "is not 10 digits (XXX-XX-XXXXX)"
            raise _refuse(
                question,
                f"{at}'s business registration number {_shown(brn.strip())} {what};"
                f" give the 10-digit number as on the certificate (e.g. {BRN_EXAMPLE})",
                value,
            )
        if normal in seen:
            raise _refuse(
                question,
                f"member {seen[normal]} and member {n} have the same business registration number {normal};"
                " list each organisation once",
                value,
            )
        seen[normal] = n
        out.append({"name": name, "kind": kind.strip(), "brn": normal})
    return out


_CHECKS = {
    "text": _text,
    "number": _number,
    "yes_no": _yes_no,
    "choice": _choice,
    "choices": _choices,
    "members": _members,
}


# -- helpers --------------------------------------------------------------------------------------


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, bool):  # True is an int to Python, not a number to a person
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))  # 0.1 as 0.1, not its binary expansion
    if isinstance(value, str):
        text = value.strip().replace("_", "") if len(value) <= 100 else ""
        if _GROUPED.match(text):
            text = text.replace(",", "")
        try:
            return Decimal(text)
        except InvalidOperation:
            return None
    return None


def _plain(amount: Decimal) -> int | str:
    """A whole number as an int; any other as its exact decimal string, without an exponent."""
    if amount == amount.to_integral_value():
        return int(amount)
    return format(amount.normalize(), "f")


def _show_number(value: object) -> str:
    amount = value if isinstance(value, Decimal) else _decimal(value)
    if amount is None or not amount.is_finite():
        return str(value)
    return format(amount.normalize(), ",f")


def _range(question: QuestionSpec) -> str:
    low, high = question.minimum, question.maximum
    if low is not None and high is not None:
        return f"{_show_number(low)} to {_show_number(high)}"
    if low is not None:
        return f"at least {_show_number(low)}"
    return f"at most {_show_number(high)}"


def _hint(question: QuestionSpec) -> str:
    kind = question.type
    if kind == "yes_no":
        return "answer yes or no"
    if kind == "number":
        bounds = "" if question.minimum is None and question.maximum is None else f" ({_range(question)})"
        return f"give a number{bounds}"
    if kind == "choice":
        return "choose one of " + ", ".join(question.options)
    if kind == "choices":
        return "choose one or more of " + ", ".join(question.options)
    if kind == "members":
        return "list the members, each with name, kind (" + ", ".join(question.member_kinds) + ") and brn"
    return f"write the answer (at most {question.max_length:,} characters)"


def _kind_of(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float, Decimal)):
        return f"the number {value}"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


def _shown(value: object) -> str:
    """A value as a message quotes it: short, on one line, control characters escaped."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in value)
        text = text if len(text) <= 60 else text[:59] + "…"
        return f"'{text}'" if value.strip() != value or not value or " " in value else text
    return _kind_of(value) if isinstance(value, (Mapping, list, tuple)) or value is None else str(value)

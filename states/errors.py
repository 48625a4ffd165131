"""Domain errors. One base; each subclass builds its message from ids.

An error that names an input holds its name (`field`: the API's body field,
e.g. 'reason', 'national_krw') and what was given (`value`, and `shown`, the
value as the message writes it). Its message is a template that leaves the
input's name to the interface: each one words it (`say`) with its own
`Wording`; the CLI writes its flags ('--reason'), the API its body fields.
`str(exc)` is the domain's own, interface-neutral wording: the plain name.

Tokens in a message (nothing else in it is touched):
  {field}     the input's name                 reason | --reason | body field 'reason'
  {field:X}   another input's name, X          skip   | --skip   | body field 'skip'
  {given}     the input and the value given    national_krw = -1 | --national -1 | body field 'national_krw' = -1
  {example}   the input with an example value  reason = "..." | --reason "..." | {"reason": "..."}
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\{(field|given|example)(?::([a-z_]+))?\}")


class Wording:
    """How an interface names an input. This one is the domain's: plain names."""

    def name(self, field: str) -> str:
        return field

    def given(self, field: str, shown: str) -> str:
        return f"{self.name(field)} = {shown}"

    def example(self, field: str, text: str) -> str:
        return f"{self.name(field)} = {text}"


PLAIN = Wording()


class GongmoError(Exception):
    """Any refusal that a user can act on: the message says what and how."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        value: object = None,
        shown: str | None = None,
        example: str | None = None,
    ) -> None:
        super().__init__(message)
        self.template = message
        self.field = field
        self.value = value
        self.shown = shown if shown is not None else ("" if value is None else str(value))
        self.example = example

    def say(self, wording: Wording = PLAIN) -> str:
        """The message in one interface's words."""

        def word(m: re.Match[str]) -> str:
            field = m[2] or self.field or "input"
            if m[1] == "field":
                return wording.name(field)
            if m[1] == "given":
                return wording.given(field, self.shown)
            return wording.example(field, self.example or '"..."')

        return _TOKEN.sub(word, self.template)

    def __str__(self) -> str:
        return self.say(PLAIN)


class TableError(GongmoError):
    """A transition table that breaks the lifecycle's rules."""


class IllegalMove(GongmoError):
    """A trigger that the table does not allow from the current state."""

    def __init__(self, application: str, state: str, trigger: str, allowed: list[str], hint: str | None = None) -> None:
        if hint is None:
            hint = f"allowed from '{state}': {', '.join(allowed)}" if allowed else f"'{state}' is final"
        super().__init__(f"cannot '{trigger}' application {application} in state '{state}' ({hint})")
        self.application = application
        self.state = state
        self.trigger = trigger
        self.allowed = list(allowed)
        self.hint = hint


class NotPermitted(GongmoError):
    """A role that may not fire a trigger."""

    def __init__(self, trigger: str, role: str, allowed: list[str]) -> None:
        super().__init__(f"role '{role}' may not fire '{trigger}' (allowed: {', '.join(allowed)})")
        self.trigger = trigger
        self.role = role
        self.allowed = list(allowed)


class OutsideWindow(GongmoError):
    """An action outside the window the calendar gives it; `opens` and
    `closes` (ISO, in the contest's zone) name the window when it is one."""

    def __init__(self, message: str, opens: str | None = None, closes: str | None = None) -> None:
        super().__init__(message)
        self.opens = opens
        self.closes = closes


class MissingReason(GongmoError):
    """A trigger that must carry a reason was fired without one."""

    def __init__(self, trigger: str, field: str = "reason") -> None:
        super().__init__(
            f"'{trigger}' needs a reason: add {{example}} (the applicant's notice carries it)",
            field=field,
            example='"..."',
        )
        self.trigger = trigger


class NotVisible(GongmoError):
    """A reader that may not see this row (another applicant's, an evaluator's conflicted one)."""


class NotFound(GongmoError):
    """A named thing (application, applicant, track) does not exist."""


class Conflict(GongmoError):
    """Someone else changed the row first (optimistic version check)."""


class InvalidInput(GongmoError):
    """A value given by a user that cannot be accepted. A message that names
    the input writes {field} (or {given}, the input and its value) where its
    name goes: InvalidInput("{given}: write a whole number", field="years", value=0)."""


class TooLarge(InvalidInput):
    """A file larger than the most its kind of document takes (the API answers 413)."""

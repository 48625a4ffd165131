"""Domain errors. One base; each subclass builds its message from ids."""

from __future__ import annotations


class GongmoError(Exception):
    """Any refusal that a user can act on: the message says what and how."""


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


class NotPermitted(GongmoError):
    """A role that may not fire a trigger."""

    def __init__(self, trigger: str, role: str, allowed: list[str]) -> None:
        super().__init__(f"role '{role}' may not fire '{trigger}' (allowed: {', '.join(allowed)})")


class OutsideWindow(GongmoError):
    """An action outside the window the calendar gives it; `opens` and
    `closes` (ISO, in the contest's zone) name the window when it is one."""

    def __init__(self, message: str, opens: str | None = None, closes: str | None = None) -> None:
        super().__init__(message)
        self.opens = opens
        self.closes = closes


class MissingReason(GongmoError):
    """A trigger that must carry a reason was fired without one."""

    def __init__(self, trigger: str) -> None:
        super().__init__(f"'{trigger}' needs a reason: add --reason \"...\" (the applicant's notice carries it)")


class NotVisible(GongmoError):
    """A reader that may not see this row (another applicant's, an evaluator's conflicted one)."""


class NotFound(GongmoError):
    """A named thing (application, applicant, track) does not exist."""


class Conflict(GongmoError):
    """Someone else changed the row first (optimistic version check)."""


class InvalidInput(GongmoError):
    """A value given by a user that cannot be accepted."""

"""The CLI's wording of domain errors: an input is named by its flag
('national_krw' -> '--national') and an example is written as the command
line takes it ('--reason "..."')."""

from __future__ import annotations

from gongmo.states.errors import GongmoError, Wording

# A field whose flag is not its name with '-' for '_'.
FLAGS: dict[str, str] = {
    "waitlist_position": "--position",
    "national_krw": "--national",
    "local_krw": "--local",
    "project_type": "--type",
    "documents": "--document",
}
# A field the CLI takes as a positional argument, named as the help shows it
# (`documents add APPLICATION KIND FILE`; `apply --document KIND=FILE` too).
ARGUMENTS: dict[str, str] = {
    "file_name": "FILE",
    "file": "FILE",
    "kind": "KIND",
}


def flag(field: str) -> str:
    return ARGUMENTS.get(field) or FLAGS.get(field, "--" + field.replace("_", "-"))


class CliWording(Wording):
    def name(self, field: str) -> str:
        return flag(field)

    def given(self, field: str, shown: str) -> str:
        return f"{flag(field)} {shown}"

    def example(self, field: str, text: str) -> str:
        return f"{flag(field)} {text}"


CLI = CliWording()


def say(exc: GongmoError) -> str:
    """The error as the CLI prints it (one or more lines, without 'error: ')."""
    return exc.say(CLI)

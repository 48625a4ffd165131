"""config.toml: the shipped figures, the refusals of a broken file, time zones, the database URL."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gongmo.workflow import cli
from gongmo.workflow.cli import wording
from gongmo.workflow.core.config import CALENDAR_ORDER, MILESTONES, ConfigError, Kind, Loaded, Track, load
from tests.conftest import config_copy

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "config.toml"
TEMPLATES = ROOT / "templates"
BN = 1_000_000_000


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GONGMO_DATABASE_URL", "GONGMO_NOW", "GONGMO_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def shipped_text() -> str:
    return CONFIG.read_text(encoding="utf-8")


def edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} should occur once in config.toml"
    return text.replace(old, new)


def local_copy(tmp_path: Path, text: str | None = None, name: str = "config.toml") -> Path:
    """The config with its database in tmp_path and the shipped templates."""
    return config_copy(tmp_path, text=shipped_text() if text is None else text, name=name)


def track_of(loaded: Loaded, key: str) -> Track:
    return loaded.config.track(key)[1]


# --- the shipped file ------------------------------------------------------------


def test_shipped_config_loads_with_exact_2022_figures() -> None:
    loaded = load(CONFIG)
    assert [c.key for c in loaded.config.contests] == [
        "scc-2022-small-medium",
        "scc-2024-creation-expansion",
        "scc-2022-demonstration",  # the 2022 release's two side calls (issue 21)
    ]
    contest, track = loaded.config.track("small-medium-2022")
    assert contest.key == "scc-2022-small-medium"
    assert contest.national_budget_krw == 32 * BN
    assert [t.key for t in contest.tracks] == ["small-medium-2022"]
    assert track.slots == 16
    assert track.funding.national_cap_krw == 2_000_000_000
    assert track.funding.years == 1
    assert track.funding.budget_national_krw == 32_000_000_000
    assert track.funding.local_match_ratio == 1.0
    assert track.slots * track.funding.national_cap_krw == track.funding.budget_national_krw
    assert track.eligibility.population_below is None
    assert Kind.DISTRICT in track.eligibility.kinds
    assert Kind.SPECIAL_CITY not in track.eligibility.kinds


def test_shipped_config_2024_figures_add_up() -> None:
    loaded = load(CONFIG)
    contest, _ = loaded.config.track("hub-2024")
    assert contest.key == "scc-2024-creation-expansion"
    assert contest.national_budget_krw == 52_000_000_000
    assert [t.key for t in contest.tracks] == ["hub-2024", "strong-small-2024", "diffusion-2024"]
    budgets = [t.funding.budget_national_krw for t in contest.tracks]
    assert budgets == [16 * BN, 24 * BN, 12 * BN]
    assert sum(budgets) == contest.national_budget_krw

    hub = track_of(loaded, "hub-2024")
    assert hub.slots == 1
    assert hub.funding.national_cap_krw == 16_000_000_000
    assert hub.funding.years == 3
    assert hub.funding.local_match_ratio == 1.0
    assert Kind.DISTRICT not in hub.eligibility.kinds
    assert hub.eligibility.population_below is None

    strong = track_of(loaded, "strong-small-2024")
    assert strong.slots == 3
    assert strong.eligibility.population_below == 1_000_000
    assert strong.eligibility.types == ["climate_crisis", "local_extinction"]
    assert strong.funding.national_cap_krw == 8_000_000_000
    assert strong.funding.years == 3
    assert Kind.METROPOLITAN_CITY not in strong.eligibility.kinds

    diffusion = track_of(loaded, "diffusion-2024")
    assert diffusion.slots == 10
    assert diffusion.eligibility.population_below == 300_000
    assert diffusion.eligibility.kinds == [Kind.CITY, Kind.COUNTY, Kind.DISTRICT]
    assert diffusion.eligibility.types == []
    assert diffusion.funding.national_min_krw == 1_000_000_000
    assert diffusion.funding.national_cap_krw == 2_000_000_000
    assert diffusion.funding.years == 1


def test_shipped_calendars_are_held_in_utc() -> None:
    loaded = load(CONFIG)
    small = track_of(loaded, "small-medium-2022").calendar
    # 2021-12-29 18:00 KST is 09:00 UTC.
    assert small.receipt_closes == datetime(2021, 12, 29, 9, 0, tzinfo=UTC)
    assert small.receipt_closes.utcoffset() == timedelta(0)
    assert small.receipt_opens == datetime(2021, 12, 27, 0, 0, tzinfo=UTC)
    assert small.announce_at == datetime(2021, 11, 23, 1, 0, tzinfo=UTC)

    diffusion = track_of(loaded, "diffusion-2024").calendar
    assert diffusion.receipt_opens == datetime(2024, 5, 2, 0, 0, tzinfo=UTC)  # 09:00 KST
    assert diffusion.receipt_closes == datetime(2024, 5, 7, 9, 0, tzinfo=UTC)  # 18:00 KST

    for key in ("hub-2024", "strong-small-2024"):
        cal = track_of(loaded, key).calendar
        assert cal.receipt_opens == datetime(2024, 5, 27, 0, 0, tzinfo=UTC), key  # 05-27 09:00 KST
        assert cal.receipt_closes == datetime(2024, 5, 29, 9, 0, tzinfo=UTC), key  # 05-29 18:00 KST
        assert cal.announce_at == datetime(2024, 3, 29, 1, 0, tzinfo=UTC), key

    for contest in loaded.config.contests:
        for track in contest.tracks:
            values = [value for _, value in track.calendar.items()]
            optional = ["review_starts"] if track.calendar.review_starts is not None else []
            assert [name for name, _ in track.calendar.items()] == [
                m for m in CALENDAR_ORDER if m in MILESTONES or m in optional
            ]
            assert all(v.utcoffset() == timedelta(0) for v in values), track.key
            assert values == sorted(values), track.key


# --- broken files are refused ------------------------------------------------


BROKEN: dict[str, tuple[Callable[[str], str], list[str]]] = {
    "slots zero": (
        lambda t: edit(t, "slots = 16", "slots = 0"),
        ["contests[0].tracks[0].slots", "= 0", "greater than or equal to 1"],
    ),
    "unknown kind": (
        lambda t: edit(t, 'kinds = ["city", "county", "district"]', 'kinds = ["city", "metropolis"]'),
        ["contests[1].tracks[2].eligibility.kinds[1]", "'metropolis'", "'metropolitan_city'"],
    ),
    "misspelt key": (
        lambda t: edit(t, "slots = 16", "slot = 16"),
        ["contests[0].tracks[0].slot", "16", "not permitted"],
    ),
    "calendar out of order": (
        lambda t: edit(t, "receipt_closes = 2021-12-29T18:00:00", "receipt_closes = 2021-12-26T18:00:00"),
        ["contests[0].tracks[0].calendar", "receipt_closes", "receipt_opens", "2021-12-26", "order"],
    ),
    "unknown timezone": (
        lambda t: t.replace('timezone = "Asia/Seoul"', 'timezone = "Asia/Busan"', 1),
        ["contests[0].timezone", "'Asia/Busan'", "unknown time zone", "IANA"],
    ),
    "track budgets above the contest budget": (
        lambda t: edit(t, "budget_national_krw = 12_000_000_000", "budget_national_krw = 13_000_000_000"),
        ["contests[1]", "53,000,000,000", "national_budget_krw 52,000,000,000"],
    ),
    "duplicate track key": (
        lambda t: edit(t, 'key = "diffusion-2024"', 'key = "hub-2024"'),
        ["contests[1]", "hub-2024", "used twice"],
    ),
    "duplicate track key across contests": (
        lambda t: edit(t, 'key = "small-medium-2022"', 'key = "hub-2024"'),
        ["hub-2024", "used twice"],
    ),
    "national cap above the track budget": (
        lambda t: edit(t, "national_cap_krw = 16_000_000_000", "national_cap_krw = 17_000_000_000"),
        ["contests[1].tracks[0].funding", "17,000,000,000", "budget_national_krw 16,000,000,000"],
    ),
    "negative contest budget": (
        lambda t: edit(t, "national_budget_krw = 32_000_000_000", "national_budget_krw = -1"),
        ["contests[0].national_budget_krw", "-1", "greater than 0"],
    ),
    "unknown environment": (
        lambda t: edit(t, 'environment = "development"', 'environment = "prod"'),
        ["gongmo.environment", "'prod'", "'production'"],
    ),
}


def refusal(tmp_path: Path, change: Callable[[str], str]) -> tuple[Path, str]:
    """The shipped config changed by `change`, loaded: its path and the refusal's message."""
    path = tmp_path / "config.toml"
    path.write_text(change(shipped_text()), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load(path)
    return path, str(info.value)


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_config_is_refused_with_file_key_value_and_expectation(tmp_path: Path, case: str) -> None:
    change, expected = BROKEN[case]
    path, message = refusal(tmp_path, change)
    assert f"{path}:" in message
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_misspelt_key_reports_both_the_stray_key_and_the_missing_one(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(edit(shipped_text(), "slots = 16", "slot = 16"), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load(path)
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert all(line.startswith(f"{path}: ") for line in lines)
    assert any("contests[0].tracks[0].slots = (missing)" in line for line in lines)
    assert any("contests[0].tracks[0].slot = 16" in line for line in lines)


def test_not_toml_is_refused_with_the_line(tmp_path: Path) -> None:
    text = edit(shipped_text(), "slots = 16", "slots 16")
    line = text.splitlines().index("  slots 16") + 1
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: not valid TOML")
    assert f"line {line}" in message


def test_not_utf8_is_refused_as_not_toml(tmp_path: Path) -> None:
    text = shipped_text()
    # the first character cp949 writes differently: 3 in "3년간", line 11
    line, column = next(
        (i, j) for i, t in enumerate(text.splitlines(), 1) for j, ch in enumerate(t, 1) if ord(ch) > 127
    )
    path = tmp_path / "config.toml"
    path.write_bytes(text.encode("cp949"))
    with pytest.raises(ConfigError) as info:
        load(path)
    assert str(info.value).startswith(f"{path}: not valid TOML: byte 0x")
    assert str(info.value).endswith(f" at line {line}, column {column} is not UTF-8: save the file as UTF-8")


def test_missing_file_says_cannot_read_and_suggests_config(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "config.toml"
    with pytest.raises(ConfigError) as info:
        load(path)
    message = str(info.value)
    assert str(path) in message
    assert "cannot read" in message
    assert info.value.field == "config"
    assert wording.say(info.value).endswith("pass --config FILE")  # the CLI names its flag


@pytest.mark.parametrize(
    ("value", "instant"),
    [
        ('"2021-12-27T09:00:00"', datetime(2021, 12, 27, 0, 0, tzinfo=UTC)),
        ("2021-12-27", datetime(2021, 12, 26, 15, 0, tzinfo=UTC)),
    ],
    ids=["quoted date-time", "date only"],
)
def test_calendar_value_that_is_not_a_toml_datetime_is_refused_or_localised(
    tmp_path: Path, value: str, instant: datetime
) -> None:
    """Either a ConfigError naming the calendar, or the value read in the contest's zone; never a TypeError."""
    path = tmp_path / "config.toml"
    path.write_text(
        edit(shipped_text(), "receipt_opens = 2021-12-27T09:00:00", f"receipt_opens = {value}"), encoding="utf-8"
    )
    try:
        loaded = load(path)
    except ConfigError as exc:
        assert f"{path}: contests[0].tracks[0].calendar" in str(exc)
    else:
        assert loaded.config.track("small-medium-2022")[1].calendar.receipt_opens == instant


# --- bad input once let through: each refused in one line per problem ---------------

SEOUL = 'timezone = "Asia/Seoul"'
DIFFUSION_REVIEW = 'review_ends = "receipt_closes + 3 working days"'
X200 = "x/" * 200
X_SHORT = "'" + "x/" * 28 + "..."  # how a refusal shows "x/" * 200: 60 characters of its repr()
HUGE = f"national_min_krw {10**200:,} exceeds national_cap_krw 2,000,000,000"


def first_contest_with_tracks(value: str) -> Callable[[str], str]:
    """The shipped file up to the first contest's tables (its documents, then its tracks), with
    `tracks = VALUE` instead (a key after a table would be the table's)."""
    return lambda t: (
        t[: min(t.index("  [[contests.documents]]"), t.index("  [[contests.tracks]]"))] + f"tracks = {value}\n"
    )


def in_small_medium_track(line: str) -> Callable[[str], str]:
    return lambda t: edit(t, "slots = 16", f"slots = 16\n  {line}")


def small_medium_reminders(line: str) -> Callable[[str], str]:
    """The 2022 track's reminders line (the shipped config sets one per track) replaced by `line`."""
    return lambda t: edit(t, 'reminders = ["D-1 working days 09:00", "-3h"]\n', f"{line}\n")


# case: (change to the shipped text, the refusal's lines after "FILE: ")
BAD_INPUT: dict[str, tuple[Callable[[str], str], list[str]]] = {
    "time zone naming a tzdata directory": (
        lambda t: t.replace(SEOUL, 'timezone = "Asia"', 1),
        ["contests[0].timezone = 'Asia': unknown time zone 'Asia' (use an IANA name such as 'Asia/Seoul')"],
    ),
    "time zone longer than a file name": (
        lambda t: t.replace(SEOUL, f'timezone = "{"a" * 300}"', 1),
        [
            f"contests[0].timezone = '{'a' * 56}...: unknown time zone '{'a' * 56}..."
            " (use an IANA name such as 'Asia/Seoul')"
        ],
    ),
    "calendar time at 0001-01-01": (
        lambda t: edit(t, "announce_at = 2021-11-23T10:00:00", "announce_at = 0001-01-01T00:00:00"),
        [
            "contests[0].tracks[0].calendar.announce_at = 0001-01-01T00:00:00:"
            " out of range: write a date-time in the years 1900 to 2999"
        ],
    ),
    "calendar time at 9999-12-31 with an offset": (
        lambda t: edit(t, "announce_at = 2021-11-23T10:00:00", "announce_at = 9999-12-31T23:00:00-10:00"),
        [
            "contests[0].tracks[0].calendar.announce_at = 9999-12-31T23:00:00-10:00:"
            " out of range: write a date-time in the years 1900 to 2999"
        ],
    ),
    "tracks not a list": (
        first_contest_with_tracks("5"),
        ["contests[0].tracks = 5: not a list: write each track as a [[contests.tracks]] table"],
    ),
    "extra_closures not a list, with a working-days rule": (
        lambda t: edit(
            t, "national_budget_krw = 52_000_000_000", "national_budget_krw = 52_000_000_000\nextra_closures = 5"
        ),
        ["contests[1].extra_closures = 5: not a list: write the dates as a list, e.g. [2024-05-07]"],
    ),
    "reminder days before, huge": (
        small_medium_reminders('reminders = ["D-99999999 09:00"]'),
        [
            "contests[0].tracks[0].reminders = ['D-99999999 09:00']: reminder 'D-99999999 09:00' is too early:"
            " write at most D-365 HH:MM or -8760h (a year before the deadline)"
        ],
    ),
    "reminder hours before, huge": (
        small_medium_reminders('reminders = ["-999999999999h"]'),
        [
            "contests[0].tracks[0].reminders = ['-999999999999h']: reminder '-999999999999h' is too early:"
            " write at most D-365 HH:MM or -8760h (a year before the deadline)"
        ],
    ),
    "working-days rule with a huge count": (
        lambda t: edit(t, DIFFUSION_REVIEW, 'review_ends = "receipt_closes + 3000000 working days"'),
        [
            "contests[1].tracks[2].calendar.review_ends = 'receipt_closes + 3000000 working days':"
            " more than 2500 working days (about ten years): count at most 2500, or write the date-time itself"
        ],
    ),
    "working-days rule counting from 9999-12-01": (
        lambda t: edit(t, "receipt_closes = 2024-05-07T18:00:00", "receipt_closes = 9999-12-01T18:00:00"),
        [
            "contests[1].tracks[2].calendar.receipt_closes = 9999-12-01T18:00:00:"
            " out of range: write a date-time in the years 1900 to 2999",
            "contests[1].tracks[2].calendar.review_ends = 'receipt_closes + 3 working days':"
            " counts from receipt_closes, which is refused: fix it first",
        ],
    ),
    "unknown key with a line break": (
        lambda t: '"a\\nb" = 1\n' + t,
        [r"'a\nb' = 1: Extra inputs are not permitted"],
    ),
    "long time zone": (
        lambda t: t.replace(SEOUL, f'timezone = "{X200}"', 1),
        [f"contests[0].timezone = {X_SHORT}: unknown time zone {X_SHORT} (use an IANA name such as 'Asia/Seoul')"],
    ),
    "long milestone": (
        in_small_medium_track(f'promotion_until = "{X200}"'),
        [
            f"contests[0].tracks[0].promotion_until = {X_SHORT}: unknown milestone {X_SHORT} (milestones:"
            f" {', '.join(MILESTONES)})"
        ],
    ),
    "long tie-break": (
        lambda t: edit(t, '"written", "receipt"]', f'"written", "{X200}"]'),
        [
            "contests[1].tracks[1].evaluation = {...}: tie-break '" + "x/" * 23 + "x...':"
            " use 'criterion:KEY', written, presentation, receipt"
        ],
    ),
    "long reminder": (
        small_medium_reminders(f'reminders = ["{X200}"]'),
        [
            "contests[0].tracks[0].reminders = ['" + "x/" * 27 + "x...: reminder '" + "x/" * 18 + "...:"
            " write 'D-N HH:MM' (e.g. 'D-3 09:00'), 'D-N working days HH:MM' (e.g. 'D-2 working days 09:00')"
            " or '-Nh' (e.g. '-3h')"
        ],
    ),
    "long notice": (
        in_small_medium_track(f'hold_notices = ["selected", "{X200}"]'),
        [
            "contests[0].tracks[0].hold_notices = ['selected', '" + "x/" * 21 + "x...:"
            f" unknown notice {X_SHORT}: use a notice's name, as in templates/ko/NAME.txt"
        ],
    ),
    "misspelt notice": (
        in_small_medium_track('hold_notices = ["selectd"]'),
        ["contests[0].tracks[0].hold_notices = ['selectd']: unknown notice 'selectd': did you mean 'selected'?"],
    ),
    "a message that repeats a huge number is cut in the middle": (
        lambda t: edit(t, "national_min_krw = 1_000_000_000", f"national_min_krw = 1{'0' * 200}"),
        ["contests[1].tracks[2].funding = {...}: " + HUGE[:147] + " ... " + HUGE[-148:]],  # 300 characters
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_refused_in_one_line_naming_the_key_the_value_and_the_fix(tmp_path: Path, case: str) -> None:
    change, expected = BAD_INPUT[case]
    path, message = refusal(tmp_path, change)
    assert message.splitlines() == [f"{path}: {line}" for line in expected]


def test_a_working_days_rule_with_a_huge_count_is_refused_at_once(tmp_path: Path) -> None:
    """It used to count day by day (about 3 s for 3,000,000 working days) and then overflow."""
    path = tmp_path / "config.toml"
    path.write_text(edit(shipped_text(), DIFFUSION_REVIEW, 'review_ends = "receipt_closes + 9999999 working days"'))
    started = time.perf_counter()
    with pytest.raises(ConfigError, match="more than 2500 working days"):
        load(path)
    assert time.perf_counter() - started < 1.0


def test_not_utf8_is_refused_naming_the_line_and_the_fix(tmp_path: Path) -> None:
    raw = shipped_text().encode()
    path = tmp_path / "config.toml"
    path.write_bytes(raw[:8] + b"\xff" + raw[8:])
    with pytest.raises(ConfigError) as info:
        load(path)
    assert (
        str(info.value) == f"{path}: not valid TOML: byte 0xff at line 1, column 9 is not UTF-8: save the file as UTF-8"
    )


@pytest.mark.parametrize(
    "case", ["time zone naming a tzdata directory", "tracks not a list", "reminder days before, huge"]
)
def test_init_on_bad_input_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    change, expected = BAD_INPUT[case]
    path = local_copy(tmp_path, change(shipped_text()))
    code = cli.run(["--config", str(path), "init"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in err + out
    assert err.splitlines() == [f"error: {path}: {line}" for line in expected]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


# --- nothing is written --------------------------------------------------------


@pytest.mark.parametrize("case", ["slots zero", "unknown timezone", "calendar out of order"])
def test_init_with_a_broken_config_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    change, expected = BROKEN[case]
    path = local_copy(tmp_path, change(shipped_text()))
    database = tmp_path / "gongmo.db"
    code = cli.run(["--config", str(path), "init"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in err + out
    lines = err.splitlines()
    assert lines and all(line.startswith("error: ") for line in lines)
    assert expected[0] in err
    assert str(path) in err
    assert not database.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


def test_init_with_a_config_that_is_not_toml_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = local_copy(tmp_path, edit(shipped_text(), "slots = 16", "slots 16"))
    code = cli.run(["--config", str(path), "init"])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("error: ")
    assert "not valid TOML" in err
    assert "Traceback" not in err + out
    assert not (tmp_path / "gongmo.db").exists()


def test_init_with_a_missing_config_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.run(["--config", str(tmp_path / "missing.toml"), "init"])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("error: ")
    assert "cannot read" in err and "--config" in err
    assert "Traceback" not in err + out
    assert list(tmp_path.iterdir()) == []


def test_the_local_copy_itself_initialises(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Control for the tests above: the same copy, unbroken, does write the database."""
    path = local_copy(tmp_path)
    code = cli.run(["--config", str(path), "init"])
    _, err = capsys.readouterr()
    if cli.state._app is not None:
        cli.state._app.db.dispose()
    assert code == 0, err
    assert (tmp_path / "gongmo.db").exists()


# --- time zones ------------------------------------------------------------------


BERLIN = """
[gongmo]
environment = "development"
database_url = "sqlite:///var/x.db"

[[contests]]
key = "berlin-2024"
name_ko = "베를린"
name_en = "Berlin"
ministry = "m"
office = "o"
office_phone = "0"
portal_url = "https://example.org"
timezone = "Europe/Berlin"
national_budget_krw = 10_000_000_000

  [[contests.tracks]]
  key = "berlin-track"
  name_ko = "트랙"
  name_en = "Track"
  slots = 2

    [contests.tracks.eligibility]
    kinds = ["city"]

    [contests.tracks.funding]
    national_cap_krw = 1_000_000_000
    years = 1
    budget_national_krw = 2_000_000_000

    [contests.tracks.calendar]
    announce_at = 2024-01-15T10:00:00
    receipt_opens = 2024-03-01T09:00:00
    receipt_closes = 2024-07-01T18:00:00
    review_ends = 2024-07-05T18:00:00+09:00
    written_starts = 2024-10-01T09:00:00
    written_ends = 2024-10-27T01:30:00
    presentation_starts = 2024-10-28T09:00:00
    presentation_ends = 2024-11-15T18:00:00
    selection_at = 2024-12-02T10:00:00
    kickoff_due = 2025-01-31T18:00:00Z
"""


def test_naive_times_are_read_in_the_contest_zone(tmp_path: Path) -> None:
    path = tmp_path / "berlin.toml"
    path.write_text(BERLIN, encoding="utf-8")
    contest, track = load(path).config.track("berlin-track")
    assert contest.timezone == "Europe/Berlin"
    cal = track.calendar
    assert cal.announce_at == datetime(2024, 1, 15, 9, 0, tzinfo=UTC)  # CET, UTC+1
    assert cal.receipt_opens == datetime(2024, 3, 1, 8, 0, tzinfo=UTC)  # CET
    assert cal.receipt_closes == datetime(2024, 7, 1, 16, 0, tzinfo=UTC)  # CEST, UTC+2
    assert cal.written_starts == datetime(2024, 10, 1, 7, 0, tzinfo=UTC)  # CEST
    assert cal.written_ends == datetime(2024, 10, 26, 23, 30, tzinfo=UTC)  # CEST, the night of the change
    assert cal.presentation_starts == datetime(2024, 10, 28, 8, 0, tzinfo=UTC)  # CET again
    assert cal.selection_at == datetime(2024, 12, 2, 9, 0, tzinfo=UTC)
    # An explicit offset is kept, not re-read in the contest's zone.
    assert cal.review_ends == datetime(2024, 7, 5, 9, 0, tzinfo=UTC)
    assert cal.kickoff_due == datetime(2025, 1, 31, 18, 0, tzinfo=UTC)
    assert all(v.utcoffset() == timedelta(0) for _, v in cal.items())


def test_the_same_local_time_in_seoul_is_a_different_instant(tmp_path: Path) -> None:
    path = tmp_path / "seoul.toml"
    path.write_text(BERLIN.replace("Europe/Berlin", "Asia/Seoul"), encoding="utf-8")
    cal = load(path).config.track("berlin-track")[1].calendar
    assert cal.announce_at == datetime(2024, 1, 15, 1, 0, tzinfo=UTC)
    assert cal.receipt_closes == datetime(2024, 7, 1, 9, 0, tzinfo=UTC)  # no daylight saving in Seoul


# --- the database URL ------------------------------------------------------------


def test_relative_sqlite_path_is_anchored_at_the_config_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "etc" / "config.toml").write_text(shipped_text(), encoding="utf-8")
    monkeypatch.chdir(tmp_path / "elsewhere")
    loaded = load(Path("../etc/config.toml"))
    assert loaded.database_url == f"sqlite:///{tmp_path / 'etc' / 'var' / 'gongmo.db'}"
    assert loaded.templates_dir == tmp_path / "etc" / "templates"


def test_absolute_sqlite_path_and_memory_are_left_alone(tmp_path: Path) -> None:
    absolute = tmp_path / "data" / "g.db"
    path = tmp_path / "config.toml"
    text = shipped_text().replace('"sqlite:///var/gongmo.db"', f'"sqlite:///{absolute}"', 1)
    path.write_text(text, encoding="utf-8")
    assert load(path).database_url == f"sqlite:///{absolute}"
    path.write_text(shipped_text().replace('"sqlite:///var/gongmo.db"', '"sqlite:///:memory:"', 1), encoding="utf-8")
    assert load(path).database_url == "sqlite:///:memory:"


def test_environment_variable_overrides_database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.toml"
    path.write_text(shipped_text(), encoding="utf-8")
    assert load(path).database_url == f"sqlite:///{tmp_path / 'var' / 'gongmo.db'}"

    url = "postgresql+psycopg://gongmo@db.internal:5432/gongmo"
    monkeypatch.setenv("GONGMO_DATABASE_URL", url)
    assert load(path).database_url == url

    other = tmp_path / "other.db"
    monkeypatch.setenv("GONGMO_DATABASE_URL", f"sqlite:///{other}")
    assert load(path).database_url == f"sqlite:///{other}"

    monkeypatch.setenv("GONGMO_DATABASE_URL", "")  # empty means unset
    assert load(path).database_url == f"sqlite:///{tmp_path / 'var' / 'gongmo.db'}"


def test_environment_database_url_is_used_by_init(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = local_copy(tmp_path)
    other = tmp_path / "from-env.db"
    monkeypatch.setenv("GONGMO_DATABASE_URL", f"sqlite:///{other}")
    code = cli.run(["--config", str(path), "init"])
    _, err = capsys.readouterr()
    if cli.state._app is not None:
        cli.state._app.db.dispose()
    assert code == 0, err
    assert other.exists()
    assert not (tmp_path / "gongmo.db").exists()


# --- the environment and the production guard (issue 18, finding 11) ------------------------------

ENV_LINE = 'environment = "development"'
MISSING_ENV = (
    ': gongmo.environment = (missing): required: write environment = "production", "rehearsal" or "development"'
    " under [gongmo] (production refuses --now, SMTP passwords in clear, a public API host and the Maildir)"
)


def production(text: str) -> str:
    """The shipped config as a production one that passes the guard: SMTP with STARTTLS, the API on loopback."""
    text = edit(text, ENV_LINE, 'environment = "production"')
    text = edit(text, 'transport = "maildir"', 'transport = "smtp"')
    return edit(text, '# username = "gongmo"', 'username = "gongmo"')


def test_the_shipped_config_names_its_environment() -> None:
    assert load(CONFIG).config.gongmo.environment == "development"


def test_a_config_without_environment_is_refused_naming_the_key_and_the_choices(tmp_path: Path) -> None:
    path, message = refusal(tmp_path, lambda t: edit(t, ENV_LINE, ""))
    assert message == f"{path}{MISSING_ENV}"


def test_a_config_without_a_gongmo_table_is_refused_the_same_way(tmp_path: Path) -> None:
    def without_table(text: str) -> str:
        start = text.index("[gongmo]")
        return text[:start] + text[text.index("[mail]") :]

    path, message = refusal(tmp_path, without_table)
    assert message == f"{path}{MISSING_ENV}"


def test_a_production_config_with_smtp_on_loopback_loads(tmp_path: Path) -> None:
    path = local_copy(tmp_path, production(shipped_text()))
    loaded = load(path)
    assert loaded.production and loaded.config.mail.transport == "smtp"
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        edited = edit(production(shipped_text()), 'host = "127.0.0.1"\nport = 8470', f'host = "{host}"\nport = 8470')
        assert load(local_copy(tmp_path, edited)).config.api.host == host


PRODUCTION_REFUSALS: dict[str, tuple[Callable[[str], str], str]] = {
    "maildir": (
        lambda t: edit(t, 'transport = "smtp"', 'transport = "maildir"'),
        "mail.transport = 'maildir': gongmo.environment = \"production\" sends real notices: use transport ="
        ' "smtp" (a Maildir keeps them on this machine while the outbox marks them sent; it is for rehearsal and'
        " development)",
    ),
    "smtp password in clear": (
        lambda t: edit(t, 'security = "starttls"', 'security = "none"'),
        "mail.smtp.security = 'none': gongmo.environment = \"production\" does not send the password of username"
        ' = \'gongmo\' in clear: use security = "starttls" or "tls"',
    ),
    "public api host": (
        lambda t: edit(t, 'host = "127.0.0.1"\nport = 8470', 'host = "0.0.0.0"\nport = 8470'),
        "api.host = '0.0.0.0': gongmo.environment = \"production\" serves the API on loopback only: set host ="
        ' "127.0.0.1" and put a TLS-terminating reverse proxy on this machine in front of it (see the README)',
    ),
}


@pytest.mark.parametrize("case", list(PRODUCTION_REFUSALS))
def test_production_refuses_each_development_setting_in_one_line(tmp_path: Path, case: str) -> None:
    change, expected = PRODUCTION_REFUSALS[case]
    path, message = refusal(tmp_path, lambda t: change(production(t)))
    assert message == f"{path}: {expected}"


def test_production_names_every_development_setting_each_on_its_line(tmp_path: Path) -> None:
    def everything(text: str) -> str:
        for change, _ in PRODUCTION_REFUSALS.values():
            text = change(text)
        return text

    path, message = refusal(tmp_path, lambda t: everything(production(t)))
    assert message.splitlines() == [f"{path}: {expected}" for _, expected in PRODUCTION_REFUSALS.values()]


@pytest.mark.parametrize("environment", ["development", "rehearsal"])
def test_the_other_environments_take_the_development_settings(tmp_path: Path, environment: str) -> None:
    def loose(text: str) -> str:
        text = edit(text, '# username = "gongmo"', 'username = "gongmo"')
        text = edit(text, 'security = "starttls"', 'security = "none"')
        text = edit(text, 'host = "127.0.0.1"\nport = 8470', 'host = "0.0.0.0"\nport = 8470')
        return edit(text, ENV_LINE, f'environment = "{environment}"')

    loaded = load(local_copy(tmp_path, loose(shipped_text())))
    assert (loaded.config.mail.transport, loaded.config.api.host) == ("maildir", "0.0.0.0")


def test_production_refuses_now_and_gongmo_now(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import run_cli

    path = local_copy(tmp_path, production(shipped_text()))
    code, _, err = run_cli(capsys, "--config", str(path), "--now", "2024-05-28T10:00", "status")
    assert code == 1 and len(err.splitlines()) == 1 and "is a production configuration" in err
    monkeypatch.setenv("GONGMO_NOW", "2024-05-28T10:00")
    code, _, err = run_cli(capsys, "--config", str(path), "status")
    assert code == 1 and len(err.splitlines()) == 1 and "is a production configuration" in err


# --- wording and times (issue 19): a time a person reads is in the contest's zone -------------


def test_a_calendar_out_of_order_is_refused_in_the_contests_zone_at_the_milestones_key(tmp_path: Path) -> None:
    path = local_copy(
        tmp_path, edit(shipped_text(), "receipt_closes = 2021-12-29T18:00:00", "receipt_closes = 2021-12-26T18:00:00")
    )
    with pytest.raises(ConfigError) as refused:
        load(path)
    (line,) = str(refused.value).splitlines()
    assert line.startswith(
        f"{path}: contests[0].tracks[0].calendar.receipt_closes = 2021-12-26T18:00:00:"
        " receipt_closes (2021-12-26 18:00 KST) comes before receipt_opens (2021-12-27 09:00 KST);"
        " milestones must be in the order announce_at, receipt_opens, receipt_closes,"
    ), line
    assert "UTC" not in line


# --- the optional review_starts and the program lengths (issue 19, points 15 and 16) --------


def test_review_starts_is_optional_and_the_2022_review_opens_on_01_03() -> None:
    loaded = load(CONFIG)
    assert track_of(loaded, "small-medium-2022").calendar.review_starts == datetime(2022, 1, 3, 0, 0, tzinfo=UTC)
    assert track_of(loaded, "hub-2024").calendar.review_starts is None
    assert "review_starts" not in dict(track_of(loaded, "hub-2024").calendar.items())


def test_review_starts_before_the_close_is_refused(tmp_path: Path) -> None:
    text = edit(
        shipped_text(),
        "    review_starts = 2022-01-03T09:00:00",
        "    review_starts = 2021-12-28T09:00:00",
    )
    with pytest.raises(ConfigError) as refused:
        load(local_copy(tmp_path, text))
    [line] = str(refused.value).splitlines()
    assert "contests[0].tracks[0].calendar" in line and "review_starts" in line and "receipt_closes" in line


def test_program_lengths_are_the_releases() -> None:
    loaded = load(CONFIG)
    years = {t.key: t.funding.years for c in loaded.config.contests for t in c.tracks}
    # 2022: "1년 동안"; 2024 hub and strong-and-small "3년간"; the diffusion track one year;
    # the 2022 side calls: one year of demonstration (chosen: the release gives none)
    assert years == {
        "small-medium-2022": 1,
        "hub-2024": 3,
        "strong-small-2024": 3,
        "diffusion-2024": 1,
        "public-private-2022": 1,
        "living-lab-2022": 1,
    }

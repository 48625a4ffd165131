"""Closed days (holidays.KR + the config's extra closures), working-day rules
in the config, and the warnings for milestones on a closed day."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gongmo.workflow.cli import setup as cli_setup
from gongmo.workflow.core import closures
from gongmo.workflow.core import config as config_mod
from gongmo.workflow.core.closures import Closures
from gongmo.workflow.core.config import ConfigError
from tests.conftest import config_copy, run_cli

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "config.toml"
TEMPLATES = ROOT / "templates"
SEOUL = ZoneInfo("Asia/Seoul")

DIFFUSION_CLOSES = "receipt_closes = 2024-05-07T18:00:00"
DIFFUSION_REVIEW = 'review_ends = "receipt_closes + 3 working days"'
CONTEST_2024_BUDGET = "national_budget_krw = 52_000_000_000"
HUB_REVIEW = "review_ends = 2024-06-05T18:00:00          # (chosen; 6.6 is Memorial Day)"


def kst(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SEOUL).astimezone(UTC)


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} is not in the shipped config exactly once"
    return text.replace(old, new)


def write_config(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    return config_copy(tmp_path, *edits)


def diffusion(loaded: config_mod.Loaded) -> config_mod.Track:
    return loaded.config.track("diffusion-2024")[1]


# --------------------------------------------------------------------------
# Closures
# --------------------------------------------------------------------------


@pytest.fixture
def shut() -> Closures:
    return Closures([2024], [date(2024, 5, 7), date(2024, 12, 30)])


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (date(2024, 5, 6), "어린이날 대체 휴일"),
        (date(2024, 6, 6), "현충일"),
        (date(2024, 9, 16), "추석"),
        (date(2024, 9, 17), "추석"),
        (date(2024, 9, 18), "추석"),
    ],
)
def test_korean_public_holidays_are_closed(day: date, name: str) -> None:
    shut = Closures([2024])
    assert day in shut
    why = shut.why(day)
    assert why is not None and name in why


def test_a_plain_tuesday_is_open() -> None:
    shut = Closures([2024])
    assert date(2024, 5, 7) not in shut
    assert shut.why(date(2024, 5, 7)) is None


def test_extra_closures_are_closed_and_say_so(shut: Closures) -> None:
    for day in (date(2024, 5, 7), date(2024, 12, 30)):
        assert day in shut
        assert shut.why(day) == "extra closure (config)"
    assert date(2024, 5, 9) not in shut


def test_weekends_are_named_but_not_in_the_closures() -> None:
    shut = Closures([2024])
    assert shut.why(date(2024, 5, 4)) == "토요일"
    assert shut.why(date(2024, 5, 12)) == "일요일"
    # `in` is about holidays and closures only: add_working_days skips weekends itself
    assert date(2024, 5, 4) not in shut
    assert date(2024, 5, 12) not in shut
    assert date(2024, 5, 8) not in shut  # a Wednesday, no holiday


def test_closures_ignore_what_is_not_a_date() -> None:
    shut = Closures([2024])
    assert "2024-06-06" not in shut
    assert None not in shut


# --------------------------------------------------------------------------
# working-day rules in the config
# --------------------------------------------------------------------------


def test_shipped_rule_resolves_to_three_working_days() -> None:
    track = diffusion(config_mod.load(CONFIG))
    assert track.calendar.receipt_closes == kst("2024-05-07 18:00")
    assert track.calendar.review_ends == kst("2024-05-10 18:00")


def test_rule_skips_the_weekend_and_the_substitute_holiday(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        (DIFFUSION_CLOSES, "receipt_closes = 2024-05-03T18:00:00"),
        (DIFFUSION_REVIEW, 'review_ends = "receipt_closes + 1 working day"'),
    )
    track = diffusion(config_mod.load(path))
    assert track.calendar.receipt_closes == kst("2024-05-03 18:00")
    # 05-04/05 weekend, 05-06 어린이날 대체 휴일
    assert track.calendar.review_ends == kst("2024-05-07 18:00")


def test_rule_skips_the_contests_extra_closures(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        (CONTEST_2024_BUDGET, f"{CONTEST_2024_BUDGET}\nextra_closures = [2024-05-07]"),
        (DIFFUSION_CLOSES, "receipt_closes = 2024-05-03T18:00:00"),
        (DIFFUSION_REVIEW, 'review_ends = "receipt_closes + 1 working day"'),
    )
    loaded = config_mod.load(path)
    contest, track = loaded.config.track("diffusion-2024")
    assert contest.extra_closures == [date(2024, 5, 7)]
    assert track.calendar.review_ends == kst("2024-05-08 18:00")
    shut = contest.closures()
    assert date(2024, 5, 7) in shut
    assert shut.why(date(2024, 5, 7)) == "extra closure (config)"
    # another contest does not share the closure
    other = loaded.config.contests[0].closures()
    assert date(2024, 5, 7) not in other


@pytest.mark.parametrize(
    "rule",
    [
        "three days after receipt_closes",
        "receipt_closes + 3 days",
        "receipt_closes + 3 working weekdays",
        "receipt_close + 3 working days",  # no such milestone
        "review_ends + 1 working day",  # itself
    ],
)
def test_garbage_rule_refused_with_the_key_path(tmp_path: Path, rule: str) -> None:
    path = write_config(tmp_path, (DIFFUSION_REVIEW, f'review_ends = "{rule}"'))
    with pytest.raises(ConfigError) as info:
        config_mod.load(path)
    message = str(info.value)
    assert str(path) in message
    assert "contests[1].tracks[2].calendar.review_ends" in message
    assert rule in message


def test_rule_naming_a_later_milestone_refused_with_the_key_path(tmp_path: Path) -> None:
    path = write_config(tmp_path, (DIFFUSION_REVIEW, 'review_ends = "written_starts + 1 working day"'))
    with pytest.raises(ConfigError) as info:
        config_mod.load(path)
    message = str(info.value)
    assert str(path) in message
    assert "contests[1].tracks[2].calendar" in message
    assert "review_ends" in message


def test_rule_naming_a_later_milestone_refused_even_with_zero_days(tmp_path: Path) -> None:
    path = write_config(tmp_path, (DIFFUSION_REVIEW, 'review_ends = "written_starts + 0 working days"'))
    with pytest.raises(ConfigError, match=r"contests\[1\]\.tracks\[2\]\.calendar.*review_ends"):
        config_mod.load(path)


# --------------------------------------------------------------------------
# flags: milestones on a closed day
# --------------------------------------------------------------------------


def test_shipped_config_has_no_milestone_on_a_closed_day() -> None:
    assert cli_setup._holiday_flags(config_mod.load(CONFIG).config) == []


def test_flags_name_a_milestone_on_a_closed_day() -> None:
    shut = Closures([2024], [date(2024, 5, 30)])
    calendar = [
        ("receipt_closes", kst("2024-05-29 18:00")),  # Wednesday
        ("review_ends", kst("2024-06-06 18:00")),  # 현충일
        ("written_starts", kst("2024-06-08 09:00")),  # Saturday
        ("selection_at", kst("2024-05-30 10:00")),  # extra closure
    ]
    found = closures.flags("t-1", calendar, "Asia/Seoul", shut)
    assert [(f.milestone, f.why) for f in found] == [
        ("review_ends", "현충일"),
        ("written_starts", "토요일"),
        ("selection_at", "extra closure (config)"),
    ]
    assert found[0].line() == "t-1: review_ends 2024-06-06 18:00 KST falls on a closed day (현충일)"


def test_flags_use_the_local_date_not_the_utc_date() -> None:
    # 2024-06-06 07:00 KST is 2024-06-05 22:00 UTC: still Memorial Day in Seoul
    found = closures.flags("t-1", [("review_ends", kst("2024-06-06 07:00"))], "Asia/Seoul", Closures([2024]))
    assert [f.why for f in found] == ["현충일"]
    # 2024-06-07 08:00 KST is 2024-06-06 23:00 UTC: a working Friday in Seoul
    assert closures.flags("t-1", [("review_ends", kst("2024-06-07 08:00"))], "Asia/Seoul", Closures([2024])) == []


@pytest.fixture
def hub_on_memorial_day(tmp_path: Path) -> Path:
    return write_config(tmp_path, (HUB_REVIEW, "review_ends = 2024-06-06T18:00:00"))


def test_config_with_a_milestone_on_memorial_day_is_flagged(hub_on_memorial_day: Path) -> None:
    found = cli_setup._holiday_flags(config_mod.load(hub_on_memorial_day).config)
    assert len(found) == 1
    [flag] = found
    assert (flag.track, flag.milestone, flag.why) == ("hub-2024", "review_ends", "현충일")
    line = flag.line()
    assert "hub-2024" in line and "review_ends" in line and "현충일" in line


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GONGMO_DATABASE_URL", "GONGMO_NOW", "GONGMO_CONFIG"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_env")
def test_contests_command_warns(hub_on_memorial_day: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "--config", str(hub_on_memorial_day), "contests")
    assert code == 0, err
    text = " ".join(out.split())
    assert "warning: hub-2024: review_ends 2024-06-06 18:00 KST falls on a closed day (현충일)" in text
    assert text.count("warning:") == 1
    json_code, json_out, _ = run_cli(capsys, "--config", str(hub_on_memorial_day), "contests", "--json")
    assert json_code == 0
    assert '"why": "현충일"' in json_out


@pytest.mark.usefixtures("no_env")
def test_init_command_warns(hub_on_memorial_day: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "--config", str(hub_on_memorial_day), "--now", "2024-03-01T10:00", "init")
    assert code == 0, err
    assert (tmp_path / "gongmo.db").exists()
    text = " ".join(out.split())
    assert "warning: hub-2024: review_ends 2024-06-06 18:00 KST falls on a closed day (현충일)" in text
    assert text.count("warning:") == 1


@pytest.mark.usefixtures("no_env")
def test_commands_do_not_warn_for_the_shipped_calendar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path)
    for argv in (["contests"], ["--now", "2024-03-01T10:00", "init"]):
        code, out, err = run_cli(capsys, "--config", str(path), *argv)
        assert code == 0, err
        assert "warning" not in out


# -- the last day of a period (Korean Civil Act art. 161; issue 19, point 11) ------------


@pytest.mark.parametrize(
    ("start", "days", "rule", "end"),
    [
        # disqualified on Thursday 5.30: 7 days end on 6.6 (현충일), so on Friday 6.7
        ("2024-05-30 10:00", 7, "civil_act_161", "2024-06-07 10:00"),
        ("2024-05-30 10:00", 7, "calendar", "2024-06-06 10:00"),
        # a last day on a Saturday ends on the Monday
        ("2024-05-25 10:00", 7, "civil_act_161", "2024-06-03 10:00"),
        # 8.15 광복절 (Thursday), then a working Friday
        ("2024-07-31 18:00", 15, "civil_act_161", "2024-08-16 18:00"),
        # 설날 2022 (1.31-2.2) and the weekend before it: Saturday 1.29 ends on Thursday 2.3
        ("2022-01-22 18:00", 7, "civil_act_161", "2022-02-03 18:00"),
        # a working last day stays
        ("2024-05-31 18:00", 7, "civil_act_161", "2024-06-07 18:00"),
    ],
)
def test_a_period_ending_on_a_closed_day_ends_on_the_next_working_day(
    start: str, days: int, rule: closures.PeriodEndRule, end: str
) -> None:
    shut = Closures(range(2021, 2026), period_end_rule=rule)
    assert shut.period_end(kst(start), days, "Asia/Seoul") == kst(end)


def test_an_extra_closure_ends_a_period_later_too() -> None:
    shut = Closures(range(2023, 2026), extra=[date(2024, 6, 7)])
    assert shut.period_end(kst("2024-05-30 10:00"), 7, "Asia/Seoul") == kst("2024-06-10 10:00")


def test_the_rule_is_a_contests_setting_and_civil_act_161_by_default(tmp_path: Path) -> None:
    loaded = config_mod.load(CONFIG)
    assert [c.period_end_rule for c in loaded.config.contests] == ["civil_act_161"] * 3  # (the side calls' too)
    assert loaded.config.contests[1].closures().period_end_rule == "civil_act_161"
    rule = 'period_end_rule = "civil_act_161"   # (chosen) as the 2022 contest'
    path = config_copy(tmp_path, (rule, 'period_end_rule = "weekdays"'))
    with pytest.raises(ConfigError) as refused:
        config_mod.load(path)
    [line] = str(refused.value).splitlines()
    assert "contests[1].period_end_rule = 'weekdays'" in line and "civil_act_161" in line and "calendar" in line

"""The notice templates under templates/ and the checks of notifications.render."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from gongmo.notifications.notices import LANGUAGES, NOTICES, SAMPLE
from gongmo.notifications.render import TZ_KEY, Rendered, Renderer

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
TZ = "Asia/Seoul"


def sample_for(notice: str, **overrides: object) -> dict[str, object]:
    values = {name: SAMPLE[name] for name in NOTICES[notice].allowed}
    values.update(overrides)
    return values


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(TEMPLATES)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A private copy of the templates directory, to break."""
    target = tmp_path / "templates"
    shutil.copytree(TEMPLATES, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    source = path.read_text(encoding="utf-8")
    assert old in source, f"{old!r} not in {path}"
    path.write_text(source.replace(old, new, 1), encoding="utf-8")


def line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


# --- the shipped templates -------------------------------------------------


def test_shipped_templates_pass_check(renderer: Renderer) -> None:
    assert renderer.check() == []


def test_every_template_file_exists() -> None:
    for language in LANGUAGES:
        for notice in NOTICES:
            for suffix in (".txt", ".html"):
                assert (TEMPLATES / language / f"{notice}{suffix}").is_file()


def test_txt_templates_hold_only_the_two_blocks() -> None:
    for language in LANGUAGES:
        for notice in NOTICES:
            source = (TEMPLATES / language / f"{notice}.txt").read_text(encoding="utf-8")
            outside = re.sub(r"\{% block (subject|text) %\}.*?\{% endblock %\}", "", source, flags=re.S)
            assert outside.strip() == "", f"{language}/{notice}.txt: text outside the blocks"
            assert source.count("{% block subject %}") == 1
            assert source.count("{% block text %}") == 1


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("notice", sorted(NOTICES))
def test_every_notice_renders(renderer: Renderer, notice: str, language: str) -> None:
    out = renderer.render(notice, language, sample_for(notice), TZ)

    assert out.subject
    assert "\n" not in out.subject and "\r" not in out.subject
    common = NOTICES[notice].common  # a sign-in link belongs to no contest and no application
    if common:
        assert SAMPLE["contest_name"] in out.subject
        assert SAMPLE["track_name"] in out.subject

    for body in (out.text, out.html):
        names = ("contact_name", "applicant_name", "office", "office_phone", "portal_url")
        for name in names if common else ("recipient_name", "signin_url"):
            assert str(SAMPLE[name]) in body, f"{name} missing in {language}/{notice}"
        # the applicant can always quote a number
        reference = "receipt_no" if "receipt_no" in NOTICES[notice].allowed else "application_id"
        if common:
            assert str(SAMPLE[reference]) in body
        assert "{{" not in body and "{%" not in body

    assert out.text.endswith("\n") and not out.text.endswith("\n\n")
    html = out.html.strip()
    assert html.startswith("<div") and html.endswith("</div>")
    for forbidden in ("<script", "<img", "<link", "<style", "src=", "<html", "<body"):
        assert forbidden not in html.lower()


@pytest.mark.parametrize("language", LANGUAGES)
def test_subjects_are_distinct(renderer: Renderer, language: str) -> None:
    subjects = {notice: renderer.render(notice, language, sample_for(notice), TZ).subject for notice in NOTICES}
    assert len(set(subjects.values())) == len(subjects), subjects


def test_only_a_selection_reads_like_a_selection(renderer: Renderer) -> None:
    ko = {n: renderer.render(n, "ko", sample_for(n), TZ).subject for n in NOTICES}
    en = {n: renderer.render(n, "en", sample_for(n), TZ).subject for n in NOTICES}
    prefix = f"[{SAMPLE['contest_name']} · {SAMPLE['track_name']}] "

    assert "선정 안내" in ko["selected"]
    assert [n for n, s in ko.items() if "선정 안내" in s] == ["selected"]
    assert "예비 선정(대기)" in ko["waitlisted"]
    assert "미선정" in ko["not_selected"]
    assert "선정 취소" in ko["cancelled"]
    assert "선정" not in ko["receipt_confirmation"]

    assert [n for n, s in en.items() if s.startswith(prefix + "Selected")] == ["selected"]
    assert en["waitlisted"].startswith(prefix + "Waitlisted")
    assert en["not_selected"].startswith(prefix + "Not selected")
    assert "Receipt confirmed" in en["receipt_confirmation"]


# --- formatting -------------------------------------------------------------


def test_korean_dates_and_amounts(renderer: Renderer) -> None:
    out = renderer.render("receipt_confirmation", "ko", sample_for("receipt_confirmation"), TZ)
    for body in (out.text, out.html):
        assert "2021-12-29 (수) 14:00 KST" in body  # 05:00 UTC
        assert "20억 원" in body
        assert SAMPLE["title"] in body
    assert "접수번호 SMC22-0001" in out.subject


def test_english_dates_and_amounts(renderer: Renderer) -> None:
    out = renderer.render("receipt_confirmation", "en", sample_for("receipt_confirmation"), TZ)
    for body in (out.text, out.html):
        assert "2021-12-29 (Wed) 14:00 KST" in body
        assert "KRW 2.0 billion" in body
    assert "receipt no. SMC22-0001" in out.subject


def test_timezone_is_the_callers(renderer: Renderer) -> None:
    out = renderer.render("receipt_confirmation", "ko", sample_for("receipt_confirmation"), "UTC")
    assert "2021-12-29 (수) 05:00 UTC" in out.text


@pytest.mark.parametrize(("ratio", "shown"), [(1.0, "1:1"), (0.5, "1:0.5"), (1.5, "1:1.5"), (2, "1:2")])
def test_match_ratio(renderer: Renderer, ratio: float, shown: str) -> None:
    for language in LANGUAGES:
        values = sample_for("call_announcement", match_ratio=ratio)
        out = renderer.render("call_announcement", language, values, TZ)
        assert shown in out.text and shown in out.html


def test_program_years_in_english(renderer: Renderer) -> None:
    one = renderer.render("call_announcement", "en", sample_for("call_announcement"), TZ)
    three = renderer.render("call_announcement", "en", sample_for("call_announcement", program_years=3), TZ)
    assert "1 year\n" in one.text
    assert "3 years\n" in three.text


EXPECTED: dict[str, dict[str, list[str]]] = {
    "call_announcement": {
        "ko": ["2021-12-27 (월) 09:00 KST", "2021-12-29 (수) 18:00 KST", "16곳", "20억 원"],
        "en": ["2021-12-27 (Mon) 09:00 KST", "2021-12-29 (Wed) 18:00 KST", "KRW 2.0 billion"],
    },
    "deadline_reminder": {
        "ko": ["접수 마감", "2021-12-29 (수) 18:00 KST"],
        "en": ["receipt closes", "2021-12-29 (Wed) 18:00 KST"],
    },
    "expired": {"ko": ["2021-12-29 (수) 18:00 KST"], "en": ["2021-12-29 (Wed) 18:00 KST"]},
    "review_passed": {"ko": ["2022-01-19 (수) 09:00 KST"], "en": ["2022-01-19 (Wed) 09:00 KST"]},
    "disqualified": {
        "ko": [SAMPLE["reason"], "이의신청", "2022-01-12 (수) 18:00 KST"],
        "en": [SAMPLE["reason"], "objection", "2022-01-12 (Wed) 18:00 KST"],
    },
    "presentation_invitation": {
        "ko": ["2022-01-25 (화) 10:00 KST", "2022-01-25 (화) 10:30 KST", SAMPLE["place"]],
        "en": ["2022-01-25 (Tue) 10:00 KST", "2022-01-25 (Tue) 10:30 KST", SAMPLE["place"]],
    },
    "selected": {
        "ko": ["20억 원", "2022-03-31 (목) 18:00 KST", "세부 실시계획"],
        "en": ["KRW 2.0 billion", "2022-03-31 (Thu) 18:00 KST", "implementation plan"],
    },
    "waitlisted": {"ko": ["1순위"], "en": ["Waitlist position"]},
    "not_selected": {"ko": [SAMPLE["reason"]], "en": [SAMPLE["reason"]]},
    "kickoff_plan_request": {
        "ko": ["2022-03-31 (목) 18:00 KST"],
        "en": ["2022-03-31 (Thu) 18:00 KST"],
    },
    "kickoff_confirmed": {
        "ko": ["20억 원", "1년"],
        "en": ["KRW 2.0 billion", "1 year"],
    },
    "cancelled": {"ko": [SAMPLE["reason"]], "en": [SAMPLE["reason"]]},
    "withdrawal_confirmed": {
        "ko": ["2021-12-29 (수) 12:00 KST", SAMPLE["reason"], SAMPLE["receipt_no"]],
        "en": ["2021-12-29 (Wed) 12:00 KST", SAMPLE["reason"], SAMPLE["receipt_no"]],
    },
    "calendar_change": {
        "ko": ["접수 마감", "2021-12-29 (수) 18:00 KST", "2021-12-30 (목) 18:00 KST", "변경 사유"],
        "en": ["receipt closes", "2021-12-29 (Wed) 18:00 KST", "2021-12-30 (Thu) 18:00 KST"],
    },
}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("notice", sorted(EXPECTED))
def test_notice_states_its_facts(renderer: Renderer, notice: str, language: str) -> None:
    out = renderer.render(notice, language, sample_for(notice, **BY_HAND.get(notice, {})), TZ)
    for fact in EXPECTED[notice][language]:
        assert str(fact) in out.text, f"{fact!r} not in {language}/{notice}.txt"
        assert str(fact) in out.html, f"{fact!r} not in {language}/{notice}.html"


# A result given by hand has no explanation: its notice states the office's reason instead.
BY_HAND: dict[str, dict[str, object]] = {"not_selected": {"explanation": []}}


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_not_selected_notice_with_an_explanation_states_it_instead_of_the_reason(
    renderer: Renderer, language: str
) -> None:
    out = renderer.render("not_selected", language, sample_for("not_selected"), TZ)
    lines = list(SAMPLE["explanation"])  # type: ignore[call-overload]
    assert lines and all(str(line) in out.text and str(line) in out.html for line in lines)
    assert str(SAMPLE["reason"]) not in out.text and str(SAMPLE["reason"]) not in out.html


# --- escaping ---------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_html_is_escaped(renderer: Renderer, language: str) -> None:
    values = sample_for("receipt_confirmation", title="<script>x</script>")
    out = renderer.render("receipt_confirmation", language, values, TZ)
    assert "&lt;script&gt;" in out.html
    assert "<script>x" not in out.html
    assert "<script>x</script>" in out.text  # plain text is not HTML
    assert "&lt;" not in out.text


def test_html_escapes_every_value(renderer: Renderer) -> None:
    values = sample_for("disqualified", reason='A & B <b>"x"</b>')
    out = renderer.render("disqualified", "ko", values, TZ)
    assert "A &amp; B &lt;b&gt;" in out.html
    assert "<b>" not in out.html


# --- broken templates are caught ---------------------------------------------


def test_misspelt_variable_is_reported(copy: Path) -> None:
    path = copy / "ko" / "receipt_confirmation.txt"
    edit(path, "receipt_no", "receipt_nr")
    line = line_of(path, "receipt_nr")

    problems = Renderer(copy).check()

    pattern = re.compile(rf"^{re.escape(str(path))}:{line}: .*receipt_nr")
    assert any(pattern.search(p) for p in problems), problems
    assert all(str(path) in p for p in problems), problems


def test_variable_of_another_notice_is_reported(copy: Path) -> None:
    path = copy / "en" / "selected.html"
    edit(path, "{{ receipt_no }}", "{{ reason }}")
    problems = Renderer(copy).check()
    assert any(p.startswith(f"{path}:") and "'reason'" in p for p in problems), problems


def test_syntax_error_is_reported(copy: Path) -> None:
    path = copy / "ko" / "selected.txt"
    edit(path, "{% block text %}\n", "{% block text %}\n{% if title %}\n")
    if_line = line_of(path, "{% if title %}")

    problems = Renderer(copy).check()

    assert problems, "an unclosed {% if %} must be reported"
    assert all(p.startswith(f"{path}:") for p in problems), problems
    match = re.match(rf"^{re.escape(str(path))}:(\d+): ", problems[0])
    assert match, problems
    assert int(match.group(1)) >= if_line


def test_html_syntax_error_is_reported(copy: Path) -> None:
    path = copy / "en" / "call_announcement.html"
    edit(path, "{{ slots }}", "{{ slots }")
    problems = Renderer(copy).check()
    assert len(problems) == 1
    assert re.match(rf"^{re.escape(str(path))}:\d+: ", problems[0]), problems


def test_attribute_typo_is_caught_by_the_sample_render(copy: Path) -> None:
    path = copy / "en" / "selected.txt"
    edit(path, "{{ receipt_no }}", "{{ receipt_no.nonexistent }}")

    problems = Renderer(copy).check()

    assert len(problems) == 1, problems
    assert str(copy / "en" / "selected") in problems[0]
    assert "nonexistent" in problems[0]


def test_attribute_typo_in_html_names_the_line(copy: Path) -> None:
    path = copy / "en" / "waitlisted.html"
    edit(path, "{{ receipt_no }}", "{{ receipt_no.nonexistent }}")
    line = line_of(path, "nonexistent")

    problems = Renderer(copy).check()

    assert len(problems) == 1, problems
    assert problems[0].startswith(str(copy / "en" / "waitlisted"))
    assert f":{line}: " in problems[0]
    assert "nonexistent" in problems[0]


def test_attribute_typo_in_txt_names_file_and_line(copy: Path) -> None:
    path = copy / "en" / "selected.txt"
    edit(path, "{{ receipt_no }}", "{{ receipt_no.nonexistent }}")
    line = line_of(path, "nonexistent")
    problems = Renderer(copy).check()
    assert problems and problems[0].startswith(f"{path}:{line}: "), problems


def test_wrong_type_for_a_filter_is_reported(copy: Path) -> None:
    path = copy / "ko" / "review_passed.txt"
    edit(path, "{{ evaluation_starts|when }}", "{{ receipt_no|when }}")
    line = line_of(path, "receipt_no|when")
    problems = Renderer(copy).check()
    assert any(p.startswith(f"{path}:{line}: ") for p in problems), problems


def test_harmless_method_call_is_fine(copy: Path) -> None:
    edit(copy / "ko" / "receipt_confirmation.txt", "{{ title }}", "{{ title.upper() }}")
    assert Renderer(copy).check() == []


def test_missing_file_is_reported(copy: Path) -> None:
    path = copy / "en" / "expired.html"
    path.unlink()
    problems = Renderer(copy, packaged=copy).check()  # no packaged file fills in
    assert len(problems) == 1, problems
    assert problems[0].startswith(str(path))
    assert "missing" in problems[0]


def test_missing_block_is_reported(copy: Path) -> None:
    path = copy / "ko" / "expired.txt"
    source = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"\{% block subject %\}.*?\{% endblock %\}\n", "", source), "utf-8")
    problems = Renderer(copy).check()
    assert any(p.startswith(f"{path}:") and "block subject" in p for p in problems), problems


def test_two_line_subject_is_reported(copy: Path) -> None:
    path = copy / "en" / "cancelled.txt"
    edit(path, "Selection cancelled", "Selection\ncancelled")
    problems = Renderer(copy).check()
    assert len(problems) == 1, problems
    assert "en/cancelled.txt" in problems[0] and "one line" in problems[0]


def test_a_template_edited_while_running_takes_effect_at_the_next_start(copy: Path) -> None:
    """A running renderer keeps the templates it was started (and checked) with: a half-saved
    edit cannot reach the notices of a close in progress; a new start reads the edit."""
    running = Renderer(copy)
    before = running.render("expired", "en", sample_for("expired"), TZ)
    path = copy / "en" / "expired.txt"
    edit(path, "{% block text %}", "{% block text %}EDITED ")
    assert running.render("expired", "en", sample_for("expired"), TZ).text == before.text
    assert Renderer(copy).render("expired", "en", sample_for("expired"), TZ).text.startswith("EDITED ")


# --- a deployment's own templates over the packaged ones ------------------------


@pytest.fixture
def own(tmp_path: Path) -> Path:
    """A deployment's templates directory holding nothing yet."""
    return tmp_path / "deployment" / "templates"


def test_an_own_file_overrides_one_notice_in_one_language_only(own: Path) -> None:
    (own / "en").mkdir(parents=True)
    source = (TEMPLATES / "en" / "expired.txt").read_text(encoding="utf-8")
    (own / "en" / "expired.txt").write_text(source.replace("{% block text %}", "{% block text %}OWN "), "utf-8")
    renderer = Renderer(own, packaged=TEMPLATES)
    packaged = Renderer(TEMPLATES)

    assert renderer.render("expired", "en", sample_for("expired"), TZ).text.startswith("OWN ")
    ko = renderer.render("expired", "ko", sample_for("expired"), TZ)
    assert ko == packaged.render("expired", "ko", sample_for("expired"), TZ)
    en_html = renderer.render("expired", "en", sample_for("expired"), TZ).html
    assert en_html == packaged.render("expired", "en", sample_for("expired"), TZ).html
    other = renderer.render("selected", "en", sample_for("selected"), TZ)
    assert other == packaged.render("selected", "en", sample_for("selected"), TZ)

    own_files = [s for s in renderer.sources() if s.origin == "own"]
    assert [(s.notice, s.language, s.suffix, s.path) for s in own_files] == [
        ("expired", "en", ".txt", own / "en" / "expired.txt")
    ]
    assert all(s.origin == "packaged" for s in renderer.sources() if s not in own_files)
    assert renderer.check() == []


def test_a_missing_own_directory_uses_the_packaged_templates(own: Path) -> None:
    renderer = Renderer(own, packaged=TEMPLATES)
    assert renderer.check() == []
    assert {s.origin for s in renderer.sources()} == {"packaged"}
    assert "no such folder" in renderer.source_lines()[0]


def test_check_finds_a_broken_own_template(own: Path) -> None:
    (own / "ko").mkdir(parents=True)
    path = own / "ko" / "receipt_confirmation.txt"
    shutil.copy(TEMPLATES / "ko" / "receipt_confirmation.txt", path)
    edit(path, "receipt_no", "receipt_nr")

    problems = Renderer(own, packaged=TEMPLATES).check()

    assert problems and all(p.startswith(f"{path}:") for p in problems), problems
    assert any("receipt_nr" in p for p in problems), problems


def test_check_finds_a_broken_own_html_template_by_its_own_path(own: Path) -> None:
    (own / "en").mkdir(parents=True)
    path = own / "en" / "waitlisted.html"
    shutil.copy(TEMPLATES / "en" / "waitlisted.html", path)
    edit(path, "{{ receipt_no }}", "{{ receipt_no.nonexistent }}")

    problems = Renderer(own, packaged=TEMPLATES).check()

    assert len(problems) == 1 and problems[0].startswith(f"{path}:"), problems


def test_source_lines_name_each_notice_once_with_both_languages(own: Path) -> None:
    (own / "en").mkdir(parents=True)
    shutil.copy(TEMPLATES / "en" / "selected.html", own / "en" / "selected.html")
    lines = Renderer(own, packaged=TEMPLATES).source_lines()

    assert lines[0] == f"own templates:      {own}"
    assert lines[1] == f"packaged templates: {TEMPLATES}"
    body = lines[2:]
    assert [line.split()[0] for line in body] == [n.key for n in NOTICES.values()]
    selected = next(line for line in body if line.startswith("selected "))
    assert "ko/selected.{txt,html} (packaged)" in selected
    assert "en/selected.txt (packaged), .html (own)" in selected


def test_the_config_naming_the_packaged_directory_is_not_an_own_one() -> None:
    renderer = Renderer(TEMPLATES, packaged=TEMPLATES)
    assert {s.origin for s in renderer.sources()} == {"packaged"}
    assert "(none: the config names the packaged ones)" in renderer.source_lines()[0]


@pytest.mark.parametrize("language", LANGUAGES)
def test_render_gives_what_jinjas_own_render_gives_for_every_notice(renderer: Renderer, language: str) -> None:
    """render() builds one context for both files from the templates' globals flattened once (issue
    25): the subject, text and HTML are what Template.render and the .txt's blocks give, for every notice."""
    env = renderer._envs[language]
    for notice in NOTICES:
        values = sample_for(notice)
        context = {**values, TZ_KEY: "Asia/Seoul"}
        txt = env.get_template(f"{notice}.txt")
        ctx = txt.new_context(dict(context))
        subject = "".join(txt.blocks["subject"](ctx)).strip()
        text = "".join(txt.blocks["text"](ctx)).strip() + "\n"
        html = env.get_template(f"{notice}.html").render(context)
        assert renderer.render(notice, language, values, "Asia/Seoul") == Rendered(subject, text, html), notice
        # the second time from the held templates: the same
        assert renderer.render(notice, language, values, "Asia/Seoul") == Rendered(subject, text, html), notice

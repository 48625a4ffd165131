"""Per-track questions (states/questions.py): each answer type taken and normalised, each refusal
naming the question, the whole submission checked (pure, no database)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from gongmo.states.errors import InvalidInput
from gongmo.states.questions import (
    BRN_EXAMPLE,
    brn_check_digit,
    describe,
    normalise_brn,
    validate,
    validate_all,
)


@dataclass(frozen=True)
class Q:
    """A question shaped as the config's (duck-typed: QuestionSpec)."""

    key: str
    type: str
    text_ko: str = "질문"
    text_en: str = "A question"
    required: bool = True
    max_length: int = 2000
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    options: list[str] = field(default_factory=list)
    member_kinds: list[str] = field(default_factory=list)
    max_members: int = 20


KINDS = ["local_government", "private_company", "university"]
CONSORTIUM = Q("consortium", "members", text_en="The consortium's members", member_kinds=KINDS)
LIVING_LAB = Q("living_lab", "yes_no", text_en="Is a living lab running or planned?")
SITES = Q("sites", "number", minimum=Decimal(1), maximum=Decimal("10.5"))
SUMMARY = Q("summary", "text", max_length=20, required=False)
FIELD = Q("field", "choice", options=["mobility", "energy", "safety"])
FIELDS = Q("fields", "choices", options=["mobility", "energy", "safety"], required=False)

# Valid business registration numbers (사업자등록번호): their check digits hold.
CITY_BRN = "220-81-62517"
COMPANY_BRN = "124-81-00998"
UNIVERSITY_BRN = "119-82-03684"


def refusal(question: Q, value: object) -> str:
    with pytest.raises(InvalidInput) as caught:
        validate(question, value)
    assert caught.value.field == f"answers.{question.key}"
    message = str(caught.value)
    assert message.startswith(f"answer '{question.key}'"), message
    return message


def member(name: str, kind: str, brn: str) -> dict[str, str]:
    return {"name": name, "kind": kind, "brn": brn}


THREE = [
    member("화성시", "local_government", CITY_BRN),
    member("Samsung", "private_company", COMPANY_BRN),
    member("서울대학교", "university", UNIVERSITY_BRN),
]


# -- business registration numbers -----------------------------------------------------------------


def test_the_check_digit_follows_the_weights_and_the_ninth_digits_half() -> None:
    # 2,2,0,8,1,6,2,5,1 x 1,3,7,1,3,7,1,3,5 = 83, plus 1*5//10 = 0: (10 - 3) % 10 = 7
    assert brn_check_digit("220816251") == 7
    # 1,2,4,8,1,0,0,9,9: 118, plus 9*5//10 = 4: 122, (10 - 2) % 10 = 8
    assert brn_check_digit("124810099") == 8
    assert normalise_brn("1198203684") == UNIVERSITY_BRN


@pytest.mark.parametrize("valid", [CITY_BRN, COMPANY_BRN, UNIVERSITY_BRN])
def test_every_single_digit_change_of_a_valid_number_fails_its_check(valid: str) -> None:
    digits = valid.replace("-", "")
    assert normalise_brn(digits) == valid
    for at in range(10):
        for d in "0123456789":
            if d != digits[at]:
                changed = digits[:at] + d + digits[at + 1 :]
                assert normalise_brn(changed) is None, changed


@pytest.mark.parametrize("given", ["2208162517", "220-81-62517", " 220-81-62517 ", "220-8162517"])
def test_a_number_is_taken_with_or_without_dashes_and_stored_with_them(given: str) -> None:
    assert normalise_brn(given) == "220-81-62517"


@pytest.mark.parametrize("given", ["22081625", "220-81-625170", "22O-81-62517", "220 81 62517", "2208l62517", ""])
def test_a_number_that_is_not_ten_digits_is_none(given: str) -> None:
    assert normalise_brn(given) is None


# -- yes_no -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [(True, True), (False, False), ("yes", True), ("no", False), ("TRUE", True), (" false ", False), ("Yes", True)],
)
def test_yes_no_takes_booleans_and_the_words_a_command_line_sends(given: object, stored: bool) -> None:
    assert validate(LIVING_LAB, given) is stored


@pytest.mark.parametrize("given", [1, 0, "y", "maybe", "", None, [True]])
def test_yes_no_refuses_anything_else(given: object) -> None:
    assert "is not yes or no; give true or false (yes or no)" in refusal(LIVING_LAB, given)


# -- number -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (3, 3),
        (Decimal("2.50"), "2.5"),
        (2.5, "2.5"),
        ("7", 7),
        (" 10.5 ", "10.5"),
        ("1e1", 10),
        (1, 1),  # the minimum and maximum are inclusive
        (Decimal("10.5"), "10.5"),
        (4.0, 4),
    ],
)
def test_a_number_is_stored_as_an_int_when_whole_and_as_an_exact_decimal_string_otherwise(
    given: object, stored: object
) -> None:
    assert validate(SITES, given) == stored
    assert type(validate(SITES, given)) is type(stored)


def test_a_float_is_read_as_written_not_as_its_binary_expansion() -> None:
    assert validate(Q("ratio", "number"), 0.1) == "0.1"


def test_thousands_separators_are_taken_in_a_string() -> None:
    amount = Q("amount", "number")
    assert validate(amount, "1,500,000") == 1_500_000
    assert validate(amount, "-1,500.25") == "-1500.25"
    assert "is not a number" in refusal(amount, "1,50")


@pytest.mark.parametrize(
    ("given", "says"),
    [
        (Decimal("0.99"), "0.99 is outside the range; give 1 to 10.5"),
        (11, "11 is outside the range; give 1 to 10.5"),
        ("10.51", "10.51 is outside the range; give 1 to 10.5"),
        ("abc", "abc is not a number; give digits"),
        ("", "'' is not a number"),
        (True, "true is not a number"),
        (None, "nothing is not a number"),
        ([3], "a list is not a number"),
        ("nan", "nan is not a finite number"),
        (float("inf"), "inf is not a finite number"),
        (Decimal("-Infinity"), "-Infinity is not a finite number"),
    ],
)
def test_a_number_outside_its_range_or_not_a_number_is_refused(given: object, says: str) -> None:
    assert says in refusal(SITES, given)


def test_a_number_too_large_to_be_meant_is_refused_even_without_a_maximum() -> None:
    unbounded = Q("amount", "number")
    assert validate(unbounded, "999999999999999999") == 999_999_999_999_999_999
    assert "too large" in refusal(unbounded, "1e18")
    assert "too large" in refusal(unbounded, "1e999999")


def test_a_one_sided_range_says_which_side() -> None:
    assert "give at least 0" in refusal(Q("n", "number", minimum=Decimal(0)), -1)
    assert "give at most 5" in refusal(Q("n", "number", maximum=Decimal(5)), 6)


# -- text -------------------------------------------------------------------------------------------


def test_text_is_stripped_and_keeps_line_breaks_and_tabs() -> None:
    assert validate(SUMMARY, "  리빙랩\n\t운영 중  ") == "리빙랩\n\t운영 중"


def test_text_is_stored_nfc() -> None:
    decomposed = "\u1105\u1175\u1107\u1175\u11bc\u1105\u1162\u11b8"  # 리빙랩, as macOS types it
    assert validate(SUMMARY, decomposed) == "리빙랩"


def test_text_at_its_limit_is_taken_and_one_character_over_is_refused() -> None:
    assert validate(SUMMARY, "가" * 20) == "가" * 20
    assert "21 characters, at most 20; shorten it" in refusal(SUMMARY, "가" * 21)


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("", "is empty"),
        ("   \n ", "is empty"),
        ("a\rb", "has a control character (U+000D, carriage return); delete it"),
        ("a\x00b", "U+0000, NUL"),
        ("\x1b[31mred", "U+001B, escape"),
        (42, "give text, not the number 42"),
        (None, "give text, not nothing"),
    ],
)
def test_text_refusals(given: object, says: str) -> None:
    assert says in refusal(SUMMARY, given)


# -- choice and choices -----------------------------------------------------------------------------


def test_a_choice_is_one_option() -> None:
    assert validate(FIELD, "energy") == "energy"
    assert validate(FIELD, " energy ") == "energy"


@pytest.mark.parametrize("given", ["tourism", "Energy", "", ["energy"]])
def test_a_choice_not_among_the_options_is_refused_listing_them(given: object) -> None:
    assert "mobility, energy, safety" in refusal(FIELD, given)


def test_choices_are_stored_in_the_configs_order() -> None:
    assert validate(FIELDS, ["safety", "mobility"]) == ["mobility", "safety"]
    assert validate(FIELDS, ("energy",)) == ["energy"]
    assert validate(FIELDS, "safety, energy") == ["energy", "safety"]  # a command line's list


@pytest.mark.parametrize(
    ("given", "says"),
    [
        (["energy", "tourism"], "tourism is not an option; choose from mobility, energy, safety"),
        (["energy", "energy"], "energy is given twice; give each option once"),
        ([], "no option given; choose at least one of mobility, energy, safety"),
        ("", "no option given"),
        ([1], "1 is not an option"),
        ({"energy": True}, "give a list of options, not an object"),
    ],
)
def test_choices_refusals(given: object, says: str) -> None:
    assert says in refusal(FIELDS, given)


# -- members ----------------------------------------------------------------------------------------


def test_members_are_stored_with_the_number_normalised_and_the_order_kept() -> None:
    given = [
        member(" 화성시 ", "local_government", "2208162517"),
        member("Samsung", "private_company", "124-81-00998"),
    ]
    assert validate(CONSORTIUM, given) == [
        {"name": "화성시", "kind": "local_government", "brn": CITY_BRN},
        {"name": "Samsung", "kind": "private_company", "brn": COMPANY_BRN},
    ]


def test_a_bad_check_digit_names_the_member_and_the_fix() -> None:
    # (123-45-67891, the example in the brief, is a valid number: its check digit 1 holds.)
    assert normalise_brn("123-45-67891") == "123-45-67891"
    given = [member("화성시", "local_government", CITY_BRN), member("X", "private_company", "123-45-67890")]
    assert refusal(CONSORTIUM, given) == (
        "answer 'consortium': member 2's business registration number 123-45-67890 fails its check digit;"
        f" give the 10-digit number as on the certificate (e.g. {BRN_EXAMPLE})"
    )


def test_the_same_number_twice_is_refused_even_written_differently() -> None:
    given = [member("화성시", "local_government", CITY_BRN), member("화성시청", "university", "2208162517")]
    assert refusal(CONSORTIUM, given) == (
        "answer 'consortium': member 1 and member 2 have the same business registration number 220-81-62517;"
        " list each organisation once"
    )


def test_the_member_count_runs_from_one_to_the_maximum() -> None:
    two = Q("pair", "members", member_kinds=KINDS, max_members=2)
    assert len(validate(two, THREE[:2])) == 2  # type: ignore[arg-type]
    assert "3 members, at most 2; list fewer" in refusal(two, THREE)
    assert "no member given; list at least one" in refusal(two, [])


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"brn": "12345"}, "member 1's business registration number 12345 is not 10 digits (XXX-XX-XXXXX)"),
        ({"brn": 2208162517}, "member 1 has no business registration number; give it as text, e.g. 220-81-62517"),
        ({"kind": "hospital"}, "member 1's kind hospital is not one of local_government, private_company, university"),
        ({"name": "  "}, "member 1 has no name"),
        ({"name": None}, "member 1 has no name"),
        ({"name": "가" * 201}, "member 1's name has 201 characters, at most 200"),
        ({"name": "A\nB"}, "member 1's name has a line break or tab; write the name on one line"),
        ({"name": "A\x07"}, "member 1's name has a control character (U+0007)"),
        ({"ceo": "Kim"}, "member 1 has ceo; a member has only name, kind and brn"),
    ],
)
def test_a_member_refusal_names_the_member_and_what_is_wrong(change: dict[str, object], says: str) -> None:
    given = [{**THREE[0], **change}, *THREE[1:]]
    assert says in refusal(CONSORTIUM, given)


def test_a_name_of_exactly_200_characters_is_taken() -> None:
    given = [{**THREE[0], "name": "가" * 200}]
    assert validate(CONSORTIUM, given) == [{"name": "가" * 200, "kind": "local_government", "brn": CITY_BRN}]


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({"name": "A"}, "give a list of members, not an object"),
        ("화성시", "give a list of members, not text"),
        (["화성시"], "member 1 is text; give an object"),
    ],
)
def test_members_that_are_not_a_list_of_objects_are_refused(given: object, says: str) -> None:
    assert says in refusal(CONSORTIUM, given)


# -- validate_all -----------------------------------------------------------------------------------

TRACK = [CONSORTIUM, LIVING_LAB, SUMMARY]


def test_a_complete_submission_is_validated_in_the_tracks_order() -> None:
    got = validate_all(TRACK, {"living_lab": "yes", "consortium": THREE}, complete=True)
    assert list(got) == ["consortium", "living_lab"]
    assert got["living_lab"] is True
    assert got["consortium"] == THREE


def test_an_unknown_key_is_refused_naming_it_and_the_tracks_questions() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_all(TRACK, {"living_lab": True, "budget": 3}, complete=False)
    assert str(caught.value) == (
        "answer 'budget' is not a question of this track; its questions are: consortium, living_lab, summary"
    )
    assert caught.value.field == "answers.budget"


def test_a_track_without_questions_refuses_any_answer() -> None:
    with pytest.raises(InvalidInput, match=r"this track asks no questions"):
        validate_all([], {"living_lab": True}, complete=False)


def test_a_complete_submission_needs_every_required_answer_and_names_the_first_missing() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_all(TRACK, {"summary": "ok"}, complete=True)
    assert str(caught.value).startswith("answer 'consortium' is required: list the members")
    assert caught.value.field == "answers.consortium"
    with pytest.raises(InvalidInput) as caught:
        validate_all(TRACK, {"consortium": THREE}, complete=True)
    assert str(caught.value) == (
        "answer 'living_lab' is required: answer yes or no (Is a living lab running or planned?)"
    )


def test_a_partial_submission_may_leave_questions_out() -> None:
    assert validate_all(TRACK, {"living_lab": False}, complete=False) == {"living_lab": False}


def test_none_removes_an_answer_but_not_a_required_one_when_complete() -> None:
    assert validate_all(TRACK, {"living_lab": None}, complete=False) == {"living_lab": None}
    everything = {"consortium": THREE, "living_lab": True}
    assert validate_all(TRACK, {**everything, "summary": None}, complete=True)["summary"] is None
    with pytest.raises(InvalidInput, match=r"^answer 'living_lab' is required"):
        validate_all(TRACK, {**everything, "living_lab": None}, complete=True)


def test_a_bad_answer_in_a_submission_is_refused_naming_its_question() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_all(TRACK, {"consortium": THREE, "living_lab": "maybe"}, complete=True)
    assert str(caught.value).startswith("answer 'living_lab': maybe is not yes or no")


# -- describe ---------------------------------------------------------------------------------------


def test_describe_counts_members_by_kind_in_the_configs_order() -> None:
    stored = validate(CONSORTIUM, list(reversed(THREE)))
    assert describe(CONSORTIUM, stored) == "3 members: local_government 1, private_company 1, university 1"
    assert describe(CONSORTIUM, stored[:1]) == "1 member: university 1"  # type: ignore[index]


@pytest.mark.parametrize(
    ("question", "value", "shown"),
    [
        (LIVING_LAB, True, "yes"),
        (LIVING_LAB, False, "no"),
        (LIVING_LAB, None, "(no answer)"),
        (Q("amount", "number"), 1_500_000, "1,500,000"),
        (Q("amount", "number"), "1234.5", "1,234.5"),
        (Q("amount", "number"), "-0.5", "-0.5"),
        (Q("amount", "number"), "-1234.5", "-1,234.5"),
        (Q("amount", "number"), 0, "0"),
        (FIELD, "energy", "energy"),
        (FIELDS, ["mobility", "safety"], "mobility, safety"),
        (SUMMARY, "한 줄\n두 줄", "한 줄 두 줄"),
        (SUMMARY, "가" * 100, "가" * 59 + "…"),
    ],
)
def test_describe_gives_a_short_line(question: Q, value: object, shown: str) -> None:
    assert describe(question, value) == shown


def test_an_unknown_type_is_a_programming_error_not_a_users() -> None:
    with pytest.raises(ValueError, match="unknown type 'date'"):
        validate(Q("when", "date"), "2024-05-01")

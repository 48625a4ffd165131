"""Plan documents (states/documents.py): the stored file name, the download header, sizes (pure)."""

from __future__ import annotations

import email.message
import email.utils
import unicodedata
from email.message import EmailMessage
from urllib.parse import unquote

import pytest

from gongmo.states.documents import (
    FILE_TYPES,
    MEDIA_TYPES,
    NAME_MAX_BYTES,
    clean_name,
    content_disposition,
    human_size,
)
from gongmo.states.errors import InvalidInput

PLAN = "사업계획서.pdf"


def test_every_type_has_its_media_type() -> None:
    assert set(MEDIA_TYPES) == set(FILE_TYPES)
    assert MEDIA_TYPES["hwp"] == "application/x-hwp"
    assert MEDIA_TYPES["hwpx"] == "application/hwp+zip"
    assert MEDIA_TYPES["xlsx"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# -- clean_name -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("../../etc/passwd", "passwd"),
        ("a\\b\\c.pdf", "c.pdf"),
        ("C:\\Users\\김\\Desktop\\사업계획서.pdf", PLAN),
        ("/abs/path/사업계획서.pdf", PLAN),
        ("..\\..\\boot.ini", "boot.ini"),
        ("  사업계획서.pdf  ", PLAN),
        ("...사업계획서.pdf..", PLAN),
        (".hidden", "hidden"),
        (PLAN, PLAN),
        ("2024 스마트도시 사업계획서 (최종).hwpx", "2024 스마트도시 사업계획서 (최종).hwpx"),
    ],
)
def test_path_parts_and_surrounding_spaces_and_dots_are_dropped(given: str, stored: str) -> None:
    assert clean_name(given) == stored


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("사업\x00계획서.pdf", PLAN),
        ("사업\r\n계획서.pdf", PLAN),
        ("\x1b[31m사업계획서.pdf", "[31m사업계획서.pdf"),  # the escape goes; the rest is only text
        ("사업계획서\x7f.pdf", PLAN),
        ("사업계획서\u0085.pdf", PLAN),  # a C1 control (NEL)
        ("invoice\u202efdp.exe", "invoicefdp.exe"),  # a right-to-left override (Cf) that hid '.exe'
        ("사업\u200b계획서.pdf", PLAN),  # a zero-width space (Cf)
        ("사업\u2028계획서.pdf", PLAN),  # a line separator (Zl)
        ("사업\ud800계획서.pdf", PLAN),  # a lone surrogate (Cs): not encodable in UTF-8
    ],
)
def test_control_and_format_characters_are_removed(given: str, stored: str) -> None:
    assert clean_name(given) == stored
    stored.encode("utf-8")  # storable


def test_a_decomposed_korean_name_is_stored_composed() -> None:
    nfd = unicodedata.normalize("NFD", PLAN)
    assert nfd != PLAN and len(nfd) > len(PLAN)
    assert clean_name(nfd) == PLAN
    assert unicodedata.is_normalized("NFC", clean_name(nfd))


def test_a_300_character_korean_name_is_kept_shortened_to_255_bytes_with_its_extension() -> None:
    long = "가나다라마" * 60 + ".pdf"
    assert len(long) == 304
    stored = clean_name(long)
    encoded = stored.encode("utf-8")
    assert len(encoded) <= NAME_MAX_BYTES
    assert encoded.decode("utf-8") == stored  # valid UTF-8: no character cut in two
    assert stored.endswith(".pdf")
    assert long.startswith(stored.removesuffix(".pdf"))
    # Hangul syllables take 3 bytes each: (255 - 4) // 3 = 83 of them fit before ".pdf".
    assert len(stored) == 83 + 4


@pytest.mark.parametrize("filler", ["a", "가", "😀", "é"])
def test_shortening_cuts_at_a_character_boundary_whatever_the_characters_width(filler: str) -> None:
    for extra in range(4):
        stored = clean_name(filler * (300 + extra) + ".hwpx")
        assert len(stored.encode("utf-8")) <= NAME_MAX_BYTES
        assert len(stored.encode("utf-8")) > NAME_MAX_BYTES - 4  # as much as fits
        assert stored.endswith(".hwpx")
        assert set(stored.removesuffix(".hwpx")) == {filler}


def test_an_absurd_extension_is_cut_as_part_of_the_stem() -> None:
    name = "plan." + "x" * 300
    stored = clean_name(name)
    assert stored == name[:NAME_MAX_BYTES]
    ext = "plan" + "가" * 100 + ".extension16chars"  # 16 characters: still an extension
    assert len("extension16chars") == 16
    assert clean_name(ext * 1).endswith(".extension16chars")


def test_a_name_that_fits_exactly_is_kept_whole() -> None:
    name = "a" * (NAME_MAX_BYTES - 4) + ".pdf"
    assert clean_name(name) == name
    assert clean_name("b" + name) != "b" + name


def test_a_shortened_name_ends_in_no_space_before_its_extension() -> None:
    name = "가" * 83 + " " + "나" * 100 + ".pdf"
    assert clean_name(name) == "가" * 83 + ".pdf"


@pytest.mark.parametrize("given", ["", "   ", "..", "../..", "a/b/", "\x00\x01", "...", "\u202e", "dir\\"])
def test_a_name_empty_after_cleaning_is_refused(given: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        clean_name(given)
    assert caught.value.field == "file_name"
    message = str(caught.value)
    assert message.startswith("file_name '")
    assert "is empty once path parts, control characters and surrounding dots and spaces are removed" in message
    assert message.endswith("give the file's own name, e.g. 사업계획서.pdf")
    assert "\x00" not in message  # shown escaped


# -- content_disposition ----------------------------------------------------------------------------


def test_the_header_has_an_ascii_fallback_and_the_utf8_name() -> None:
    header = content_disposition(PLAN)
    assert header == (
        "attachment; filename=\"_____.pdf\"; filename*=UTF-8''%EC%82%AC%EC%97%85%EA%B3%84%ED%9A%8D%EC%84%9C.pdf"
    )
    assert header.isascii()
    assert unquote(header.split("filename*=UTF-8''")[1]) == PLAN


def parsed_names(header: str) -> tuple[str, str]:
    """The header as Python's email parser reads it: (filename, filename* decoded per RFC 2231).

    The parser keeps both; its get_filename() returns the first, where RFC 6266 (4.3) has a
    recipient pick filename*, which it sends after filename (section 5: a user agent that does
    not know filename* ignores it there)."""
    message = email.message.Message()
    message["Content-Disposition"] = header
    params = message.get_params(header="content-disposition")
    assert params is not None and params[0] == ("attachment", "")
    plain = [v for k, v in params if k == "filename" and isinstance(v, str)]
    extended = [v for k, v in params if k == "filename" and isinstance(v, tuple)]
    assert len(plain) == 1 and len(extended) == 1
    assert extended[0][0].lower() == "utf-8"
    return plain[0], email.utils.collapse_rfc2231_value(extended[0])


@pytest.mark.parametrize(
    "name",
    [PLAN, "2024 스마트도시 (최종) 계획서.hwpx", 'a "quoted"; name\\.pdf', "100% 완료.pdf", "plain.pdf", "é;ç=ü.docx"],
)
def test_the_name_round_trips_through_an_email_parser(name: str) -> None:
    header = content_disposition(name)
    fallback, utf8 = parsed_names(header)
    assert utf8 == name
    assert fallback.isascii() and len(fallback) == len(name)
    # The extended form alone is what EmailMessage (the default policy) reads whole.
    message = EmailMessage()
    message["Content-Disposition"] = "attachment; filename*=" + header.split("filename*=")[1]
    assert message.get_filename() == name
    assert message.get_content_disposition() == "attachment"


@pytest.mark.parametrize(
    ("name", "fallback"),
    [
        ('a "quoted" name.pdf', "a _quoted_ name.pdf"),
        ("back\\slash.pdf", "back_slash.pdf"),
        ("100%.pdf", "100_.pdf"),
        ("사업계획서.pdf", "_____.pdf"),
        ("", "download"),
    ],
)
def test_the_ascii_fallback_replaces_what_it_cannot_carry(name: str, fallback: str) -> None:
    assert f'filename="{fallback}"' in content_disposition(name)


def test_the_utf8_name_uses_only_rfc5987_attr_chars() -> None:
    attr_chars = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$&+-.^_`|~%")
    encoded = content_disposition("a b;c'd\"e/f\\g*h(i)가.pdf").split("filename*=UTF-8''")[1]
    assert set(encoded) <= attr_chars
    assert unquote(encoded) == "a b;c'd\"e/f\\g*h(i)가.pdf"


def test_inline_is_the_other_disposition_and_anything_else_is_a_programming_error() -> None:
    assert content_disposition(PLAN, "inline").startswith("inline; filename=")
    with pytest.raises(ValueError, match="one of attachment, inline"):
        content_disposition(PLAN, "attachment; evil=1")


# -- human_size -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "shown"),
    [
        (0, "0 B"),
        (1023, "1,023 B"),
        (1024, "1.0 KB"),
        (1536, "1.5 KB"),
        (1024 * 1024 - 1, "1.0 MB"),  # 1023.999 KB rounds up into the next unit
        (int(1.5 * 1024 * 1024), "1.5 MB"),
        (50 * 1024 * 1024, "50.0 MB"),
        (50 * 1024 * 1024 + 1, "50.0 MB"),
        (3 * 1024**3, "3.0 GB"),
        (5 * 1024**4, "5.0 TB"),
    ],
)
def test_human_size_uses_binary_units_with_one_decimal(n: int, shown: str) -> None:
    assert human_size(n) == shown

"""Byte sizes: every accepted spelling, every malformed one, and the parse/format round trip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migpolicy.errors import InputError
from migpolicy.units import MAX_SIZE, format_size, parse_size

KIB, MIB, GIB, TIB = 1 << 10, 1 << 20, 1 << 30, 1 << 40


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4096", 4096),
        ("4K", 4 * KIB),
        ("4k", 4 * KIB),
        ("4KiB", 4 * KIB),
        ("4kib", 4 * KIB),
        ("4KB", 4 * KIB),
        ("2M", 2 * MIB),
        ("2MiB", 2 * MIB),
        ("1G", GIB),
        ("1GiB", GIB),
        ("1T", TIB),
        (" 64K ", 64 * KIB),
        ("64 K", 64 * KIB),
        ("1.5K", 1536),
        ("0.5M", 512 * KIB),
        ("5B", 5),
        (4096, 4096),
    ],
)
def test_parse_size_accepts(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "text",
    ["3X", "-4K", "0", "0K", "0.0M", "1.5", "0.1K", "", "   ", "K", "4 K B B", "4KiBs", "1e3",
     "4M2", "two", "4.K", ".5K", 0, -4096],
)
def test_parse_size_rejects_naming_the_option(text: str | int) -> None:
    with pytest.raises(InputError) as info:
        parse_size(text, "--folio")
    message = str(info.value)
    assert message.startswith("--folio: ")
    assert "\n" not in message
    assert repr(text) in message or str(text) in message


def test_parse_size_rejects_bool() -> None:
    with pytest.raises(InputError):
        parse_size(True, "--bytes")


def test_default_name_in_message() -> None:
    with pytest.raises(InputError, match=r"^size: "):
        parse_size("nope")


@pytest.mark.parametrize(
    ("nbytes", "text"),
    [(1, "1B"), (1000, "1000B"), (KIB, "1KiB"), (4 * KIB, "4KiB"), (1536, "1536B"),
     (2 * MIB, "2MiB"), (3 * MIB + KIB, "3073KiB"), (GIB, "1GiB"), (5 * TIB, "5TiB"),
     (2048 * TIB, "2048TiB")],
)
def test_format_size_picks_largest_dividing_unit(nbytes: int, text: str) -> None:
    assert format_size(nbytes) == text


@given(st.integers(min_value=1, max_value=1 << 50))
def test_format_then_parse_round_trips(nbytes: int) -> None:
    assert parse_size(format_size(nbytes)) == nbytes


@given(st.integers(min_value=1, max_value=1 << 20), st.sampled_from(["", "K", "M", "G"]),
       st.sampled_from(["", "B", "iB"]), st.booleans())
def test_every_spelling_of_a_whole_size_parses(
    number: int, unit: str, suffix: str, lower: bool
) -> None:
    if not unit and suffix == "iB":
        suffix = "B"
    text = f"{number}{unit}{suffix}"
    scale = {"": 1, "K": KIB, "M": MIB, "G": GIB}[unit]
    assert parse_size(text.lower() if lower else text) == number * scale


@given(st.integers(min_value=1, max_value=1 << 40))
def test_parse_of_formatted_size_is_canonical(nbytes: int) -> None:
    text = format_size(nbytes)
    assert format_size(parse_size(text)) == text


# -- exact and bounded ------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("9007199254740993", 9007199254740993 if 9007199254740993 <= MAX_SIZE else None),
    ("1125899906842623", (1 << 50) - 1),   # 2**50 - 1: a float would still hold it, ints must
    ("1125899906842623B", (1 << 50) - 1),
    ("0.25K", 256),
    ("1.125M", 1179648),
    ("1024T", 1 << 50),
])
def test_sizes_are_exact_integers(text: str, expected: int | None) -> None:
    if expected is None:
        with pytest.raises(InputError, match="larger than the largest size"):
            parse_size(text, "--bytes")
    else:
        assert parse_size(text, "--bytes") == expected


@pytest.mark.parametrize("text", ["99999999999999999999T", "1025T", str((1 << 50) + 1),
                                  "9" * 5000, 1 << 63, "1" + "0" * 30])
def test_sizes_past_the_bound_are_refused(text: str | int) -> None:
    with pytest.raises(InputError) as caught:
        parse_size(text, "--bytes")
    assert str(caught.value).startswith("--bytes: ") and "\n" not in str(caught.value)


@given(st.integers(min_value=1, max_value=MAX_SIZE), st.integers(min_value=0, max_value=12))
def test_a_decimal_spelling_parses_exactly(nbytes: int, places: int) -> None:
    """A decimal number of KiB parses to exactly its value in bytes, or is refused if fractional."""
    from fractions import Fraction

    digits = nbytes * 10**places // KIB  # nbytes in KiB, truncated to ``places`` decimals
    text = f"{digits // 10**places}.{digits % 10**places:0{places}d}K" if places else f"{digits}K"
    exact = Fraction(digits, 10**places) * KIB
    if exact.denominator != 1 or exact == 0:
        with pytest.raises(InputError):
            parse_size(text)
    else:
        assert parse_size(text) == exact.numerator


@given(st.text(max_size=30))
def test_any_text_parses_to_a_bounded_size_or_one_sentence(text: str) -> None:
    try:
        value = parse_size(text, "--folio")
    except InputError as exc:
        assert str(exc).startswith("--folio: ") and "\n" not in str(exc)
    else:
        assert isinstance(value, int) and 1 <= value <= MAX_SIZE

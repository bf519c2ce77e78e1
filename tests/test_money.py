"""money.py: the one scale, the one rounding rule and exact parsing."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditgate import money
from creditgate.money import (
    MAX_UNITS,
    UNITS_PER_CENT,
    UNITS_PER_USD,
    cents,
    div_round_half_up,
    parse_usd,
    to_cents_number,
    to_usd_string,
    to_whole_cents,
    usage_cost,
)


@pytest.mark.parametrize(
    ("num", "den", "expected"),
    [
        (5, 10, 1),
        (4, 10, 0),
        (15, 10, 2),
        (14, 10, 1),
        (-5, 10, -1),
        (-4, 10, 0),
        (-15, 10, -2),
        (0, 7, 0),
        (1, 2, 1),
        (-1, 2, -1),
        (1, 3, 0),
        (2, 3, 1),
        (10**30 + 5, 10, 10**29 + 1),
    ],
)
def test_div_round_half_up_rounds_halves_away_from_zero(num: int, den: int, expected: int) -> None:
    assert div_round_half_up(num, den) == expected


@given(st.integers(-(10**20), 10**20), st.integers(1, 10**12))
def test_div_round_half_up_matches_exact_rational(num: int, den: int) -> None:
    exact = Fraction(num, den)
    got = div_round_half_up(num, den)
    assert abs(Fraction(got) - exact) <= Fraction(1, 2)
    if abs(Fraction(got) - exact) == Fraction(1, 2):  # a tie went away from zero
        assert abs(got) > abs(exact)


def test_div_round_half_up_rejects_bad_denominators() -> None:
    for den in (0, -1):
        with pytest.raises(ValueError):
            div_round_half_up(1, den)


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("1", UNITS_PER_USD),
        ("1.50", 1_500_000_000),
        ("0.000000001", 1),
        (".5", 500_000_000),
        ("5.", 5 * UNITS_PER_USD),
        ("-2.25", -2_250_000_000),
        ("+3", 3 * UNITS_PER_USD),
        ("  0.01 ", cents(1)),
        ("0.1000000000000", 100_000_000),
        ("0", 0),
        ("-0", 0),
        ("9223372036.854775807", MAX_UNITS),
    ],
)
def test_parse_usd_exact(text: str, units: int) -> None:
    assert parse_usd(text) == units


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        ".",
        "-",
        "abc",
        "1e3",
        "1E-2",
        "1_000",
        "NaN",
        "Infinity",
        "0x10",
        "1.2.3",
        "1,50",
        "0.0000000001",
        "9223372036.854775808",
        "1" * 41,
        "١٢",
        "1\n2",
        "--1",
        "$1",
        None,
        5,
        1.5,
    ],
)
def test_parse_usd_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_usd(text)  # type: ignore[arg-type]


def test_parse_usd_huge_exponent_is_rejected_fast() -> None:
    # Decimal would turn this into a billion-digit integer.
    with pytest.raises(ValueError):
        parse_usd("1e999999999")


@given(st.integers(-MAX_UNITS, MAX_UNITS))
def test_usd_string_round_trips(units: int) -> None:
    text = to_usd_string(units)
    assert parse_usd(text) == units
    whole, frac = text.lstrip("-").split(".")
    assert 2 <= len(frac) <= 9 and whole.isdigit()


@pytest.mark.parametrize(
    ("units", "text"),
    [
        (0, "0.00"),
        (UNITS_PER_USD, "1.00"),
        (1_500_000_000, "1.50"),
        (1, "0.000000001"),
        (-1_500_000_000, "-1.50"),
        (100 * UNITS_PER_USD, "100.00"),
        (123_456_789_012, "123.456789012"),
    ],
)
def test_to_usd_string(units: int, text: str) -> None:
    assert to_usd_string(units) == text


def test_to_cents_number_int_when_whole_and_nearest_float_otherwise() -> None:
    assert to_cents_number(cents(150)) == 150 and isinstance(to_cents_number(cents(150)), int)
    assert to_cents_number(-cents(3)) == -3 and isinstance(to_cents_number(-cents(3)), int)
    assert to_cents_number(0) == 0
    assert to_cents_number(5_000_000) == 0.5
    assert to_cents_number(1) == 1e-7
    assert to_cents_number(-12_345_678) == -1.2345678


@given(st.integers(-(10**18), 10**18))
def test_to_cents_number_is_the_nearest_float(units: int) -> None:
    value = to_cents_number(units)
    if units % UNITS_PER_CENT == 0:
        assert value == units // UNITS_PER_CENT and isinstance(value, int)
    else:
        assert isinstance(value, float)
        assert value == float(Fraction(units, UNITS_PER_CENT))


@pytest.mark.parametrize(
    ("units", "whole"),
    [
        (cents(3), 3),
        (cents(3) + UNITS_PER_CENT // 2, 4),
        (cents(3) + UNITS_PER_CENT // 2 - 1, 3),
        (-(cents(3) + UNITS_PER_CENT // 2), -4),
        (1, 0),
        (0, 0),
    ],
)
def test_to_whole_cents_rounds_half_up(units: int, whole: int) -> None:
    assert to_whole_cents(units) == whole


def test_usage_cost_is_exact_for_tiny_calls() -> None:
    # 10 tokens at $0.10 per million = $0.000001 = 1,000 units, exactly
    assert usage_cost(10, 0, 0, parse_usd("0.10"), 0, 0, 0) == 1000
    # gpt-4o list price: 1000 in, 500 out, 400 of the input cached
    cost = usage_cost(1000, 500, 400, parse_usd("2.50"), parse_usd("10.00"), parse_usd("1.25"), 0)
    assert cost == (600 * 2_500_000_000 + 400 * 1_250_000_000 + 500 * 10_000_000_000) // 10**6
    assert usage_cost(0, 0, 0, 5, 5, 5, 777) == 777  # request fee only


@given(
    st.integers(0, 10**9),
    st.integers(0, 10**9),
    st.data(),
    st.integers(0, 10**13),
    st.integers(0, 10**13),
    st.integers(0, 10**13),
    st.integers(0, 10**12),
)
def test_usage_cost_matches_decimal_arithmetic(
    input_tokens: int,
    output_tokens: int,
    data: st.DataObject,
    input_rate: int,
    output_rate: int,
    cached_rate: int,
    fee: int,
) -> None:
    cached = data.draw(st.integers(0, input_tokens))
    got = usage_cost(input_tokens, output_tokens, cached, input_rate, output_rate, cached_rate, fee)
    exact = Fraction(
        (input_tokens - cached) * input_rate + cached * cached_rate + output_tokens * output_rate, 10**6
    )
    # one rounding of the whole call (half away from zero; all terms are >= 0), then the fee
    assert got - fee == math.floor(exact + Fraction(1, 2))


def test_scale_constants() -> None:
    assert money.UNITS_PER_USD == 100 * money.UNITS_PER_CENT
    assert money.MAX_AMOUNT * 9 < money.MAX_UNITS

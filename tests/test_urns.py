"""services.core.urns: courier's sender -> URN rules (gocommon urns.ParsePhone and the EX handler)."""

import pytest

from services.core.urns import UrnError, phone_number, sender_urn


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        (" 0788383383 ", "RW", "+250788383383"),  # national number, white space trimmed
        ("+250788383383 ", "RW", "+250788383383"),
        ("250788383383", "RW", "+250788383383"),  # country code without +
        ("+250788383383", "KE", "+250788383383"),  # another country's number
        ("(917)992-5253", "US", "+19179925253"),  # punctuation removed
        ("800-CABBAGE", "US", "+18002222243"),  # letters as keypad digits
        ("0877747666", "ID", "+62877747666"),
        ("07531669965", "GB", "+447531669965"),
        ("254791541111", "US", "+254791541111"),  # international, + missing, wrong country
        ("2349067554729", "US", "+2349067554729"),  # 11+ digits retried with +
        ("2207222333", "GM", "+2207222333"),
        ("+250788123123", None, "+250788123123"),  # international needs no country
        ("10000", "US", "10000"),  # short code kept with a country
        ("123456", "RW", "123456"),
    ],
)
def test_phone_number(raw, country, expected):
    assert phone_number(raw, country) == expected


@pytest.mark.parametrize(
    ("raw", "country"),
    [
        ("MTN", "US"),  # letters only
        ("0788383383", None),  # national number without a country
        ("10000", None),  # short code without a country
        ("5912705", "US"),  # only possible as a local number
        ("1" * 80, "RW"),  # too long (and not cached)
        ("", "RW"),
        ("+", "RW"),
    ],
)
def test_phone_number_refused(raw, country):
    with pytest.raises(UrnError, match="not a possible number"):
        phone_number(raw, country)


def test_sender_urn_tel_and_other_schemes():
    assert sender_urn("+2349067554729", country="US") == ("tel:+2349067554729", "+2349067554729")
    assert sender_urn(" 2349067554729", country="GM", scheme="ext") == ("ext:2349067554729", "2349067554729")
    assert sender_urn("+2349067554729", country="GM", scheme="ext") == ("ext:+2349067554729", "+2349067554729")
    with pytest.raises(UrnError, match="empty sender"):
        sender_urn("   ", country="GM", scheme="ext")

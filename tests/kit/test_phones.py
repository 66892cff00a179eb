from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pesaswitch.errors import InvalidPhone, UnsupportedNetwork
from pesaswitch.kit.phones import check_phone, mask_phone, normalize_mpesa_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0708374149", "254708374149"),
        ("0110123456", "254110123456"),
        ("+254708374149", "254708374149"),
        ("254708374149", "254708374149"),
        ("708374149", "254708374149"),
        ("110123456", "254110123456"),
        ("+254 708 374 149", "254708374149"),
        ("0708-374-149", "254708374149"),
        ("(0708) 374149", "254708374149"),
        ("+254-115-123456", "254115123456"),
        ("0181123456", "254181123456"),
    ],
)
def test_every_kenyan_form_normalises(raw: str, expected: str) -> None:
    assert normalize_mpesa_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "network"),
    [
        ("0733123456", "airtel"),
        ("0100123456", "airtel"),
        ("0785123456", "airtel"),
        ("0771123456", "telkom"),
        ("0764123456", "equitel"),
    ],
)
def test_other_networks_are_refused_by_name(raw: str, network: str) -> None:
    with pytest.raises(UnsupportedNetwork) as err:
        normalize_mpesa_phone(raw)
    assert err.value.extra["network"] == network
    result = check_phone(raw)
    assert result.valid is False
    assert result.network == network
    assert result.normalized is not None


@pytest.mark.parametrize(
    "raw",
    ["", "abc", "2547083741490", "07083741", "+255712345678", "0208374149", "07o8374149", "1" * 40],
)
def test_garbage_is_invalid(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        normalize_mpesa_phone(raw)
    assert check_phone(raw).normalized is None


@given(st.text(max_size=30))
def test_check_phone_never_raises(raw: str) -> None:
    result = check_phone(raw)
    assert result.valid is False or (result.normalized or "").startswith(("2547", "2541"))


@given(st.from_regex(r"\A7[0-2][0-9]{7}\Z"))
def test_all_forms_of_one_number_agree(national: str) -> None:
    forms = [f"0{national}", f"+254{national}", f"254{national}", national]
    assert {normalize_mpesa_phone(form) for form in forms} == {f"254{national}"}


def test_mask_keeps_only_edges() -> None:
    assert mask_phone("254708374149") == "2547*****149"
    assert "374" not in mask_phone("254708374149")

"""The id normaliser (opendip.contract.ids): scalar and batch forms agree; NFKC, strip,
control/format characters, length and character set are enforced with Chinese reasons."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opendip.contract.ids import (
    ID_FIELDS,
    InvalidIdError,
    normalise_id,
    normalise_id_array,
    try_normalise_id,
)


@pytest.mark.parametrize(
    ("raw", "field", "want"),
    [
        ("C1", "case_id", "C1"),
        ("  C1\u3000", "case_id", "C1"),
        ("Ｃ１", "case_id", "C1"),
        ("H001", "hospital_id", "H001"),
        ("ZY2026-0001.2", "case_id", "ZY2026-0001.2"),
    ],
)
def test_good_ids(raw: str, field: str, want: str) -> None:
    assert normalise_id(raw, field) == want


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        ("C1\u200b", "case_id", "结算清单号：含不可见或控制字符"),
        ("A\x00B", "case_id", "结算清单号：含不可见或控制字符"),
        ("\u202eABC", "case_id", "结算清单号：含不可见或控制字符"),
        ("H001\u200b", "hospital_id", "定点医疗机构代码：含不可见或控制字符"),
        ("\ufeffP1", "patient_id", "人员编号：含不可见或控制字符"),
        ("X" * 65, "case_id", "结算清单号：过长（最多 64 个字符）"),
        ("H" * 33, "hospital_id", "定点医疗机构代码：过长（最多 32 个字符）"),
        ("C 1", "case_id", "结算清单号：含不允许的字符"),
        ("病例1", "case_id", "结算清单号：含不允许的字符"),
        ("=HYPERLINK(1)", "case_id", "结算清单号：含不允许的字符"),
        ("H.001", "hospital_id", "定点医疗机构代码：含不允许的字符"),
        ("   ", "case_id", "结算清单号：不能为空"),
    ],
)
def test_bad_ids_name_the_field(raw: str, field: str, message: str) -> None:
    with pytest.raises(InvalidIdError) as exc:
        normalise_id(raw, field)
    assert str(exc.value).startswith(message)
    assert try_normalise_id(raw, field) is None


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.text(max_size=80),
            st.text(alphabet="AZaz09_.-Ｃ１\u200b\u3000 \x00\u202e", max_size=70),
        ),
        max_size=20,
    ),
    st.sampled_from(sorted(ID_FIELDS)),
)
def test_batch_form_equals_scalar_form(values: list[str | None], field: str) -> None:
    got = normalise_id_array(pa.array(values, pa.string()), field)
    for value, canon, bad in zip(values, got.values.to_pylist(), got.bad.to_pylist(), strict=True):
        scalar = try_normalise_id(value, field)
        if scalar is not None:
            assert (canon, bad) == (scalar, False), value
        elif value is None or not value.strip() or not _nfkc_strip(value):
            assert canon is None and not bad  # missing, not bad
        else:
            assert canon is None and bad, value


def _nfkc_strip(value: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKC", value).strip()

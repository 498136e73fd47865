from __future__ import annotations

import pytest

from finkcube.config import resolve_url
from finkcube.errors import InputError, InvalidIdError
from finkcube.ids import parse_id, parse_ids, read_objects_file


@pytest.mark.parametrize(
    "value",
    [
        "",
        " ",
        "abc",
        "-5",
        "0",
        "1.5",
        "1e3",
        "12345678901234567890",
        str(2**63),
        None,
        1.0,
        True,
        -1,
        0,
    ],
)
def test_parse_id_rejects(value: object) -> None:
    with pytest.raises(InvalidIdError, match="positive decimal integer"):
        parse_id(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", 1), (" 42 ", 42), (2**63 - 1, 2**63 - 1), ("313761043604045880", 313761043604045880)],
)
def test_parse_id_accepts(value: object, expected: int) -> None:
    assert parse_id(value) == expected


def test_parse_ids_keeps_order_and_drops_repeats() -> None:
    assert parse_ids(["5", 3, "5", 1]) == [5, 3, 1]


def test_objects_file_names_the_bad_line() -> None:
    with pytest.raises(InputError, match=r"ids.txt, line 3: invalid diaObjectId 'x1'"):
        read_objects_file("1\n# c\nx1\n", name="ids.txt")


def test_resolve_url_order_and_schemes() -> None:
    assert resolve_url("http://a:1/", env={"FINKCUBE_URL": "http://b"}) == "http://a:1"
    assert resolve_url(env={"FINKCUBE_URL": "http://b"}) == "http://b"
    for bad in ("ftp://x", "file:///etc/passwd", "localhost:8000"):
        with pytest.raises(InputError, match="invalid service URL"):
            resolve_url(bad, env={})

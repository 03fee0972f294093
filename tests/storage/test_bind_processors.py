"""Bind processors of our own: one that answers again for the very object it was last given
(date-times, booleans), and JSON columns' serializing plain values directly."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from mailpass.storage.database import Database
from mailpass.storage.prepared import CompiledStatement
from mailpass.storage.values import remember_last_value, serialize_plain_json


def test_the_same_object_is_processed_once_and_any_other_anew() -> None:
    calls: list[datetime] = []

    def process(value: datetime) -> str:
        calls.append(value)
        return value.isoformat()

    remembered = remember_last_value(process)
    now = datetime(2026, 12, 2, 1, 30)
    later = now + timedelta(seconds=1)
    equal_but_another = datetime(2026, 12, 2, 1, 30)

    answers = [remembered(value) for value in (now, now, later, now, equal_but_another)]

    assert answers == [v.isoformat() for v in (now, now, later, now, equal_but_another)]
    assert calls == [now, later, now, equal_but_another]
    assert calls[-1] is equal_but_another


@pytest.mark.parametrize(
    "url", ["sqlite:////tmp/mailpass-never-opened.sqlite3", "postgresql://u@127.0.0.1/never"]
)
def test_values_are_bound_as_sqlalchemys_processors_bind_them(url: str) -> None:
    """The JSON and boolean columns' faster processors answer what SQLAlchemy's own do."""
    dialect = Database(url)._dialect
    statement = sa.select(sa.literal(1)).where(
        sa.bindparam("data", type_=sa.JSON) != None,  # noqa: E711
        sa.bindparam("flag", type_=sa.Boolean) != None,  # noqa: E711
        sa.bindparam("raw", type_=sa.LargeBinary) != None,  # noqa: E711
    )
    compiled = CompiledStatement.of(statement, dialect)
    names = [name for name, _, _ in compiled.parameters]
    data, flag_at = names.index("data"), names.index("flag")
    own = {
        name: sa_type.dialect_impl(dialect).bind_processor(dialect)
        for name, sa_type in (("data", sa.JSON()), ("flag", sa.Boolean()))
    }
    values = [
        None,
        [],
        ["a@example.com"],
        ("order", "confirmation"),
        {"order_id": "42", "nested": {"n": [1, 2.5, True, None]}},
        "text",
        7,
        2**70,  # beyond orjson: the json module's
        sa.null(),  # SQL NULL
        sa.JSON.NULL,  # JSON null
    ]
    for value in values:
        bound = compiled.bind({"data": value, "flag": True, "raw": b"x"})
        assert bound[data] == own["data"](value), value  # type: ignore[misc]
    for flag in [True, False, None, True, True, False]:
        bound = compiled.bind({"data": [], "flag": flag, "raw": None})
        assert bound[flag_at] == own["flag"](flag)  # type: ignore[misc]
        assert type(bound[flag_at]) is type(own["flag"](flag))  # type: ignore[misc]


def test_a_json_processor_that_serializes_otherwise_is_left_alone() -> None:
    def own(value: object) -> str:
        return "custom"

    assert serialize_plain_json(own) is own

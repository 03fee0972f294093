"""A bind processor that answers again for the very object it was last given (date-times)."""

from __future__ import annotations

from datetime import datetime, timedelta

from mailpass.storage.database import _remembering_last


def test_the_same_object_is_processed_once_and_any_other_anew() -> None:
    calls: list[datetime] = []

    def process(value: datetime) -> str:
        calls.append(value)
        return value.isoformat()

    remembered = _remembering_last(process)
    now = datetime(2026, 12, 2, 1, 30)
    later = now + timedelta(seconds=1)
    equal_but_another = datetime(2026, 12, 2, 1, 30)

    answers = [remembered(value) for value in (now, now, later, now, equal_but_another)]

    assert answers == [v.isoformat() for v in (now, now, later, now, equal_but_another)]
    assert calls == [now, later, now, equal_but_another]
    assert calls[-1] is equal_but_another

"""SQL statements sent through the default connection, counted and kept (method, SQL) for
the measured request only."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import pytest
from tortoise import connections

_METHODS = (
    "execute_query",
    "execute_query_dict",
    "execute_insert",
    "execute_many",
    "execute_script",
)


class Statements(Counter[str]):
    """Statements by method, and their SQL in order."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []


_measured: ContextVar[bool] = ContextVar("measured", default=False)


@contextmanager
def counting(monkeypatch: pytest.MonkeyPatch) -> Iterator[Statements]:
    """Every statement sent through the default connection's class, by method, from this
    task and the tasks it starts (a context variable they inherit): the runtime's own
    background tasks, started before, are not counted."""
    sent: Statements = Statements()
    client = type(connections.get("default"))
    for name in _METHODS:
        original = getattr(client, name)

        def wrapper(self: Any, *args: Any, _name: str = name, _original: Any = original) -> Any:
            if _measured.get():
                sent[_name] += 1
                sent.texts.append(str(args[0]) if args else "")
            return _original(self, *args)

        monkeypatch.setattr(client, name, wrapper)
    token = _measured.set(True)
    try:
        yield sent
    finally:
        _measured.reset(token)
        monkeypatch.undo()

"""Tortoise's asyncpg client, made to replace the connections PostgreSQL ends.

PostgreSQL ends sessions on pg_terminate_backend, a restart, a failover, an idle timeout.
asyncpg's pool learns of it only when it reads the end of the socket, so for a moment a
dead connection looks idle and healthy, and the next statement fails on it: with
`ConnectionDoesNotExistError` (or the server's `AdminShutdownError`) when it was sent;
with `InternalClientError: cannot switch to state 12; another operation (2) is in
progress` when the server's last message (a FATAL ErrorResponse) arrived while the
connection sat idle, since asyncpg then parks the protocol in its error state, waiting for
a ReadyForQuery that never comes. Even a statement that succeeded fails when the pool's
reset on release meets the dead connection. tortoise 1.1 neither retries nor translates
any of this, so each such statement failed its request.

On a failure that says the connection is gone (`connection_failed`), this client:

- drops that connection and renews the pool: every connection opened before the failure
  is replaced at its next use, so no dead one is handed out again;
- retries once, on a new connection, where nothing can run twice: a read outside a
  transaction; a write outside a transaction whose connection failed the check made just
  before it (a sent write is never re-sent: whether it committed before the connection
  died is unknown); the start of a transaction (its connection and BEGIN);
- fails a transaction at once with DBConnectionError: nothing in it is re-run, no ROLLBACK
  is sent on the dead connection (PostgreSQL rolls back what a closed session left open),
  and the task leaves the transaction with its connection released;
- keeps the result of a statement that completed when only the reset on release failed.

Everything else, such as PostgreSQL not accepting connections, fails with
DBConnectionError, and the next statement connects again.

The module's name holds "asyncpg" on purpose: tortoise's migration executor picks its
schema editor by the client's module name (`MigrationExecutor._schema_editor`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
from asyncpg import exceptions as pg
from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import (
    NestedTransactionContext,
    PoolConnectionWrapper,
    TransactionContext,
    TransactionContextPooled,
)
from tortoise.connection import get_connections
from tortoise.exceptions import DBConnectionError, TransactionManagementError

log = logging.getLogger("envyard.db")

T = TypeVar("T")

# Set while a write outside a transaction takes its connection: check the connection first.
_check_before_use: ContextVar[bool] = ContextVar("envyard_check_before_use", default=False)


def connection_failed(exc: BaseException) -> bool:
    """Whether `exc` says the connection is gone or unusable, not that the statement failed."""
    if isinstance(exc, DBConnectionError):
        return True
    if isinstance(exc, TimeoutError | pg.QueryCanceledError):
        return False  # a slow or cancelled statement: the session lives on
    if isinstance(exc, pg.PostgresConnectionError | pg.OperatorInterventionError | OSError):
        return True  # the session ended (57P01 admin_shutdown, ...) or the socket broke
    if type(exc) in (pg.InternalClientError, pg.ProtocolError):
        return True  # the protocol lost its way: a FATAL message received while idle
    # A closed connection refuses calls; a pool connection that closed in use was taken
    # back by its pool at once (asyncpg's Connection._cleanup), and its proxy refuses them.
    return isinstance(exc, pg.InterfaceError) and (
        "connection is closed" in str(exc) or "released back to the pool" in str(exc)
    )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class _NotSent(DBConnectionError):
    """No working connection could be had: the statement was not sent."""


@dataclass
class _Session:
    """What a transaction and its savepoints share: whether their connection was lost."""

    lost: bool = False


class AsyncpgReconnectingClient(AsyncpgDBClient):
    def acquire_connection(self) -> _PoolConnection:
        return _PoolConnection(self, self._pool_init_lock)

    def _in_transaction(self) -> TransactionContext:
        return _Transaction(_TransactionWrapper(self), self._pool_init_lock)

    async def execute_insert(self, query: str, values: list) -> asyncpg.Record | None:
        return await self._run(False, super().execute_insert, query, values)

    async def execute_many(self, query: str, values: list) -> None:
        await self._run(False, super().execute_many, query, values)

    async def execute_script(self, query: str) -> None:
        await self._run(False, super().execute_script, query)

    async def execute_query(self, query: str, values: list | None = None) -> tuple[int, list[dict]]:
        return await self._run(_reads(query), super().execute_query, query, values)

    async def execute_query_dict(self, query: str, values: list | None = None) -> list[dict]:
        return await self._run(_reads(query), super().execute_query_dict, query, values)

    async def _run(self, reads: bool, statement: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run a statement outside a transaction; once more if that cannot run it twice."""
        token = _check_before_use.set(not reads)
        try:
            try:
                return await statement(*args)
            except Exception as exc:
                if not connection_failed(exc) or not (reads or isinstance(exc, _NotSent)):
                    error = _connection_error(exc)
                    if error is None:
                        raise
                    raise error from exc
                log.info("database connection lost (%s); trying a new one", _describe(exc))
            try:
                return await statement(*args)
            except Exception as exc:
                error = _connection_error(exc)
                if error is None:
                    raise
                raise error from exc
        finally:
            _check_before_use.reset(token)

    async def _acquire(self) -> Any:
        """A pool connection (a PoolConnectionProxy); _NotSent if connecting failed."""
        try:
            if self._pool is None:
                async with self._pool_init_lock:  # as tortoise's PoolConnectionWrapper
                    if self._pool is None:
                        await self.create_connection(with_db=True)
            assert self._pool is not None
            return await self._pool.acquire()
        except DBConnectionError:
            raise
        except Exception as exc:
            error = _NotSent if connection_failed(exc) else DBConnectionError
            raise error(f"cannot connect to the database: {_describe(exc)}") from exc

    async def _release(self, connection: Any) -> None:
        if connection is None or self._pool is None:
            return
        try:
            await self._pool.release(connection)
        except Exception as exc:
            if not connection_failed(exc):
                raise
            # Its reset met a dead connection: the pool has terminated it (asyncpg's
            # PoolConnectionHolder.release), and the others may be dead too.
            await self._renew()

    async def _drop(self, connection: Any) -> None:
        """Close a connection that failed, instead of resetting it, and renew the pool."""
        with contextlib.suppress(pg.InterfaceError):  # already closed and given back
            connection.terminate()
        await self._release(connection)
        await self._renew()

    async def _renew(self) -> None:
        # Connections opened before a failure may have died with it (a restart ends them
        # all): each is replaced when next acquired; those in use, when released.
        if self._pool is not None:
            await self._pool.expire_connections()


def _reads(query: str) -> bool:
    return query.lstrip()[:6].upper() == "SELECT"


def _connection_error(exc: Exception) -> DBConnectionError | None:
    """tortoise's error for a driver's connection failure; None for any other error."""
    if isinstance(exc, DBConnectionError) or not connection_failed(exc):
        return None
    return DBConnectionError(f"lost the connection to the database: {_describe(exc)}")


class _PoolConnection(PoolConnectionWrapper[asyncpg.Connection]):
    """A pool connection for one statement: dropped, not reset, if it failed."""

    client: AsyncpgReconnectingClient

    async def __aenter__(self) -> asyncpg.Connection:
        self.connection = connection = await self.client._acquire()
        if _check_before_use.get():
            try:
                await connection.execute("SELECT 1")
            except Exception as exc:
                await self.client._drop(connection)
                if not connection_failed(exc):
                    raise
                raise _NotSent(f"a pool connection was dead: {_describe(exc)}") from exc
            except BaseException:  # cancelled: __aexit__ will not run
                await self.client._release(connection)
                raise
        return connection

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        if exc_val is not None and connection_failed(exc_val):
            await self.client._drop(self.connection)
        else:
            await self.client._release(self.connection)


class _TransactionWrapper(TransactionWrapper):
    """A transaction's connection: when it fails, the transaction fails, at once."""

    _client: AsyncpgReconnectingClient
    _session: _Session

    def __init__(self, connection: AsyncpgDBClient) -> None:
        super().__init__(connection)
        if isinstance(connection, _TransactionWrapper):  # a savepoint, on the same connection
            self._client, self._session = connection._client, connection._session
        else:
            assert isinstance(connection, AsyncpgReconnectingClient)
            self._client, self._session = connection, _Session()

    def _in_transaction(self) -> TransactionContext:
        return NestedTransactionContext(_TransactionWrapper(self))

    async def _translate_exceptions(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super()._translate_exceptions(func, *args, **kwargs)
        except Exception as exc:
            if not connection_failed(exc):
                raise
            await self._lose()
            raise DBConnectionError(
                f"lost the connection to the database in a transaction: {_describe(exc)}"
            ) from exc

    async def commit(self) -> None:
        if self._session.lost:
            raise DBConnectionError(
                "lost the connection to the database in a transaction: nothing was committed"
            )
        try:
            await super().commit()
        except Exception as exc:
            if not connection_failed(exc):
                raise
            await self._lose()
            raise DBConnectionError(
                "lost the connection to the database while committing: the transaction may"
                f" or may not have been committed ({_describe(exc)})"
            ) from exc

    async def rollback(self) -> None:
        if not self._session.lost:
            try:
                await super().rollback()
                return
            except Exception as exc:
                if not connection_failed(exc):
                    raise
                await self._lose()
        # PostgreSQL rolls back what a session left open when it ends.
        self._finalized = True

    async def _lose(self) -> None:
        self._session.lost = True
        await self._client._drop(self._connection)


class _Transaction(TransactionContextPooled):
    """`in_transaction()`: started on a new connection if its first one was dead."""

    client: _TransactionWrapper

    async def __aenter__(self) -> _TransactionWrapper:
        wrapper = self.client
        for attempt in (1, 2):
            try:
                wrapper._connection = await wrapper._client._acquire()
            except _NotSent:
                if attempt == 2:
                    raise
                continue
            wrapper._session = _Session()
            try:
                await wrapper.begin()
            except DBConnectionError as exc:  # dropped already; nothing in it ran
                if attempt == 2:
                    raise
                log.info("database connection lost (%s); trying a new one", _describe(exc))
                continue
            except BaseException:
                await wrapper._client._release(wrapper._connection)
                raise
            self.token = get_connections().set(self.connection_name, wrapper)
            return wrapper
        raise AssertionError("unreachable")

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        wrapper = self.client
        try:
            if not wrapper._finalized:
                if exc_type is None:
                    await wrapper.commit()
                elif exc_type is not TransactionManagementError:  # as tortoise does
                    await wrapper.rollback()
        finally:
            try:
                await wrapper._client._release(wrapper._connection)
            finally:
                get_connections().reset(self.token)


client_class = AsyncpgReconnectingClient

"""envyard serve | worker | user add | user token | user list | lock | gc | kernel |
export-schema."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from app.settings import Settings, SettingsError

T = TypeVar("T")


def _say(text: str) -> None:
    print(f"envyard: {text}", file=sys.stderr, flush=True)


def _where(settings: Settings) -> None:
    from app.datadir import shown_url

    _say(f"data directory {settings.data_dir}, database {shown_url(settings.database_url)}")


def _run_with_database(
    settings: Settings, work: Callable[[], Awaitable[T]], *, create: bool = False
) -> T:
    """Run `work` with the ORM open on an existing database (or a new one, if `create`)."""
    from app.services.runtime import database

    async def run() -> T:
        async with database(settings, create=create):
            return await work()

    return asyncio.run(run())


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from app import datadir
    from app.graphql.ws_protocol import BatchingWebSocketProtocol
    from app.main import create_app
    from app.services.users import DEFAULT_ADMIN, DEFAULT_ORG, bootstrap_admin

    _where(settings)
    datadir.prepare(settings.data_dir)
    # A standalone server builds into the data directory: one server per directory. API
    # processes of the distributed mode build nothing and may share one.
    lock = (
        contextlib.nullcontext()
        if settings.redis_url
        else datadir.exclusive(settings.data_dir, args.port)
    )
    with lock:
        token = _run_with_database(settings, bootstrap_admin, create=True)
        if token is not None:
            print(
                f"envyard: new database; created organization {DEFAULT_ORG!r} with admin "
                f"{DEFAULT_ADMIN!r}. Its API token (shown once):\n{token}",
                flush=True,
            )
        shown_host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
        print(f"envyard: console at http://{shown_host}:{args.port}/", flush=True)
        print(f"envyard: GraphiQL at http://{shown_host}:{args.port}/graphql", flush=True)
        uvicorn.run(
            create_app(settings),
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            # websockets' sans-I/O protocol, writing a late joiner's replay many lines at a
            # time (app/graphql/ws_protocol.py)
            ws=BatchingWebSocketProtocol,
            # Log lines are tiny frames; compressing each costs more CPU than it saves bytes,
            # and with hundreds of subscribers per build that CPU is the line latency.
            ws_per_message_deflate=False,
            # A frame larger than a request body may be is refused (close code 1009).
            ws_max_size=settings.max_body_bytes,
        )
    return 0


def _user_add(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.users import add_user

    async def work() -> str:
        _, token = await add_user(args.org, args.username, admin=args.admin)
        return token

    _where(settings)
    token = _run_with_database(settings, work, create=args.create)
    role = "admin" if args.admin else "user"
    print(f"Created {role} {args.username!r} in organization {args.org!r}. API token:")
    print(token)
    return 0


def _user_token(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.users import new_user_token

    _where(settings)
    token = _run_with_database(settings, lambda: new_user_token(args.org, args.username))
    print(f"New API token of {args.username!r} in {args.org!r} (the old one no longer works):")
    print(token)
    return 0


def _user_list(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.users import list_users

    _where(settings)
    users = _run_with_database(settings, lambda: list_users(args.org))
    print(f"{'ORGANIZATION':<24} {'USERNAME':<24} {'ROLE':<6} CREATED")
    for user in users:
        role = "admin" if user.is_admin else "user"
        created = user.created_at.strftime("%Y-%m-%d %H:%M")
        print(f"{user.organization.name:<24} {user.username:<24} {role:<6} {created}")
    return 0


def _lock(args: argparse.Namespace, settings: Settings) -> int:
    from app.domain.lockfiles import LockFormat
    from app.services.environments import lockfile_for_operator

    _where(settings)
    text = _run_with_database(
        settings,
        lambda: lockfile_for_operator(
            args.env_id, args.version, LockFormat(args.format), settings.index_url
        ),
    )
    sys.stdout.write(text)
    return 0


def _gc(args: argparse.Namespace, settings: Settings) -> int:
    from app.services import retention
    from app.services.runtime import make_builder, make_event_bus

    keep = args.keep if args.keep is not None else settings.keep_versions
    if keep is None:
        _say("envyard gc needs --keep N or ENVYARD_KEEP_VERSIONS (versions kept per environment)")
        return 2
    _where(settings)

    async def work() -> list[retention.Archived]:
        builder = make_builder(settings)
        # Distributed: dashboards see the ARCHIVED events live (standalone: in the timeline).
        bus = make_event_bus(settings) if settings.redis_url else None
        try:
            done = await retention.collect(builder, keep, dry_run=args.dry_run, bus=bus)
            if not args.dry_run:
                for name in await builder.sweep():
                    print(f"removed {name} (build tools of another envyard version)")
            return done
        finally:
            if bus is not None:
                await bus.aclose()
            await builder.aclose()

    done = _run_with_database(settings, work)
    verb = "would archive" if args.dry_run else "archived"
    for item in done:
        size = "size unknown" if item.size_bytes is None else _bytes(item.size_bytes)
        freed = "" if item.freed is None else f", {_bytes(item.freed)} freed here"
        print(f"{verb} {item.organization}/{item.short_name} version {item.number} ({size}{freed})")
    total = sum(item.size_bytes or 0 for item in done)
    freed_total = sum(item.freed or 0 for item in done)
    summary = f"{len(done)} version{'' if len(done) == 1 else 's'} {verb}, {_bytes(total)} recorded"
    if not args.dry_run:
        summary += f", {_bytes(freed_total)} freed on this host"
    print(summary + f" (keeping {keep} per environment besides active, submitted, published)")
    return 0


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.redis_url:
        _say("envyard worker needs ENVYARD_REDIS_URL (the distributed mode)")
        return 2
    from workers.settings import make_worker

    _where(settings)
    make_worker(settings).run()
    return 0


def _export_schema(args: argparse.Namespace, settings: Settings | None) -> int:
    from strawberry.printer import print_schema

    from app.graphql.schema import schema

    sys.stdout.write(print_schema(schema) + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="envyard",
        description="Define, build, version, review and publish Python environments.",
        epilog="Settings come from ENVYARD_* variables (see the README); ENVYARD_DATA_DIR "
        "(default ./.envyard) holds the database, environments and caches.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the API (GraphiQL at /graphql); creates the database on first start",
        description="Run the API. Standalone (no ENVYARD_REDIS_URL), builds run in this "
        "process and one server holds the data directory.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="how much the server logs",
    )
    serve.set_defaults(run=_serve)

    worker = commands.add_parser(
        "worker", help="run builds from the Redis queue (distributed mode)"
    )
    worker.set_defaults(run=_worker)

    user = commands.add_parser(
        "user", help="manage users and their API tokens (on the server's existing database)"
    ).add_subparsers(dest="user_command", required=True, metavar="USER_COMMAND")
    add = user.add_parser("add", help="create a user (and its organization if new)")
    add.add_argument("--org", required=True, help="the user's organization (made if new)")
    add.add_argument("--admin", action="store_true", help="the user reviews and publishes")
    add.add_argument(
        "--create",
        action="store_true",
        help="make a new database if the data directory has none (otherwise refused)",
    )
    add.add_argument("username", help="lowercase letters and digits, starting with a letter")
    add.set_defaults(run=_user_add)

    token = user.add_parser(
        "token", help="issue a new API token for a user; the old one stops working"
    )
    token.add_argument("--org", required=True, help="the user's organization")
    token.add_argument("username", help="the user")
    token.set_defaults(run=_user_token)

    listing = user.add_parser("list", help="list users, their organizations and roles")
    listing.add_argument("--org", default=None, help="only this organization's users")
    listing.set_defaults(run=_user_list)

    lock = commands.add_parser(
        "lock", help="print the lock file of a version (its active one by default)"
    )
    lock.add_argument("env_id", metavar="ENV_ID", help="the environment's id")
    lock.add_argument("--version", type=int, default=None, help="the version number")
    lock.add_argument(
        "--format",
        default="LOCK",
        choices=["LOCK", "REQUIREMENTS_TXT", "ENVIRONMENT_YML"],
        help="a rattler lock file (default), pip requirements, or a conda environment file",
    )
    lock.set_defaults(run=_lock)

    gc = commands.add_parser(
        "gc",
        help="archive old versions: remove their built files (prefixes, images), keep their "
        "records and lock files",
        description="Apply the retention policy to every environment: besides the active, "
        "submitted and published versions, keep the files of the N latest successful ones. "
        "A revert to an archived version rebuilds it from its lock file.",
    )
    gc.add_argument(
        "--keep",
        type=int,
        default=None,
        help="versions kept per environment (default: ENVYARD_KEEP_VERSIONS)",
    )
    gc.add_argument("--dry-run", action="store_true", help="only print what would be archived")
    gc.set_defaults(run=_gc)

    from app.kernels.commands import add_parser as add_kernel_parser

    add_kernel_parser(commands)

    export = commands.add_parser("export-schema", help="print the GraphQL SDL")
    export.set_defaults(run=_export_schema, no_settings=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Tortoise announces every start and shutdown of the ORM at INFO, several per command.
    logging.getLogger("tortoise").setLevel(logging.WARNING)
    if getattr(args, "no_settings", False):
        return int(args.run(args, None))
    from app.datadir import DataDirError
    from app.domain.errors import DomainError

    try:
        return int(args.run(args, Settings.from_env()))
    except SettingsError as exc:
        _say(str(exc))
    except DataDirError as exc:
        _say(str(exc))
    except DomainError as exc:
        _say(exc.message)
    return 2


if __name__ == "__main__":
    sys.exit(main())

"""envyard serve | worker | user add | export-schema."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from app.settings import Settings, SettingsError


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from app.main import create_app
    from app.services.runtime import database
    from app.services.users import DEFAULT_ADMIN, DEFAULT_ORG, bootstrap_admin

    async def bootstrap() -> str | None:
        async with database(settings):
            return await bootstrap_admin()

    token = asyncio.run(bootstrap())
    shown_host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    print(f"envyard: GraphiQL at http://{shown_host}:{args.port}/graphql", flush=True)
    if token is not None:
        print(
            f"envyard: new database; created organization {DEFAULT_ORG!r} with admin "
            f"{DEFAULT_ADMIN!r}. Its API token (shown once):\n{token}",
            flush=True,
        )
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        ws="websockets-sansio",
        # Log lines are tiny frames; compressing each costs more CPU than it saves bytes, and
        # with hundreds of subscribers per build that CPU is the line latency.
        ws_per_message_deflate=False,
    )
    return 0


def _user_add(args: argparse.Namespace, settings: Settings) -> int:
    from app.domain.errors import DomainError
    from app.services.runtime import database
    from app.services.users import add_user

    async def run() -> str:
        async with database(settings):
            _, token = await add_user(args.org, args.username, admin=args.admin)
            return token

    try:
        token = asyncio.run(run())
    except DomainError as exc:
        print(f"envyard: {exc.message}", file=sys.stderr)
        return 2
    role = "admin" if args.admin else "user"
    print(f"Created {role} {args.username!r} in organization {args.org!r}. API token:")
    print(token)
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.redis_url:
        print(
            "envyard: envyard worker needs ENVYARD_REDIS_URL (the distributed mode)",
            file=sys.stderr,
        )
        return 2
    from workers.settings import make_worker

    make_worker(settings).run()
    return 0


def _export_schema(args: argparse.Namespace, settings: Settings | None) -> int:
    from strawberry.printer import print_schema

    from app.graphql.schema import schema

    sys.stdout.write(print_schema(schema) + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="envyard", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API (GraphiQL at /graphql)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("worker", help="run builds from the Redis queue (distributed)")
    worker.set_defaults(run=_worker)

    user = commands.add_parser("user", help="manage users").add_subparsers(
        dest="user_command", required=True
    )
    add = user.add_parser("add", help="create a user (and its organization if new)")
    add.add_argument("--org", required=True)
    add.add_argument("--admin", action="store_true")
    add.add_argument("username")
    add.set_defaults(run=_user_add)

    export = commands.add_parser("export-schema", help="print the GraphQL SDL")
    export.set_defaults(run=_export_schema, no_settings=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if getattr(args, "no_settings", False):
        return int(args.run(args, None))
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"envyard: {exc}", file=sys.stderr)
        return 2
    return int(args.run(args, settings))


if __name__ == "__main__":
    sys.exit(main())

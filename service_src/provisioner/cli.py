"""``cmp-provisioner``: serve the webhooks (default), check the configuration, migrate the schema, or list and
replay dead letters.

    cmp-provisioner [serve] [--host 0.0.0.0] [--port 8000]
    cmp-provisioner check-config
    cmp-provisioner migrate
    cmp-provisioner dead-letters list [--json] [--limit 1000]
    cmp-provisioner dead-letters replay ID
    cmp-provisioner catch-up [--since 2026-01-01T00:00:00Z]

``serve`` and ``check-config`` read the whole environment the service reads; ``migrate`` and the dead-letter
commands read only DATABASE_URL, so an operator can run them with the pod's environment
(``kubectl exec deploy/cmp-provisioner -- cmp-provisioner dead-letters list``) or against a local PostgreSQL.
Every failure is one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import NoReturn

from pydantic import SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.exc import SQLAlchemyError

from service_src.common.logs import configure_logging

from .inbox import InboxStore
from .schema import SchemaError
from .settings import ProvisionerSettings, check_database_url, config_errors

PROG = "cmp-provisioner"
COMMANDS = ("serve", "check-config", "migrate", "dead-letters", "catch-up")


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    database_url: SecretStr

    @field_validator("database_url")
    @classmethod
    def _db_url(cls, value: SecretStr) -> SecretStr:
        return check_database_url(value)


class Failed(Exception):
    """A command failed; the message is what to print (one line per problem), ``status`` the exit status:
    2 for a bad environment, 1 for anything else."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def _settings() -> ProvisionerSettings:
    try:
        return ProvisionerSettings()
    except ValidationError as exc:
        raise Failed("\n".join(f"{PROG}: {line}" for line in config_errors(exc)), status=2) from None


def _serve(args: argparse.Namespace) -> int:
    # Imported here, not at the top: uvicorn and the app (FastAPI, the worker) take seconds to import, which
    # check-config and the dead-letter commands, run by hand through kubectl exec, would pay for nothing.
    import uvicorn

    from .app import create_app, migrate_schema

    settings = _settings()
    configure_logging(settings.log_level)
    if settings.migrate_on_start:  # here rather than in the app's start-up, so a failure is one line
        store = InboxStore(settings.database_url.get_secret_value(), pool_size=1)
        try:
            migrate_schema(store)
        except SchemaError as exc:
            raise Failed(f"{PROG}: {exc}") from None
        except SQLAlchemyError as exc:
            raise Failed(f"{PROG}: the inbox database failed: {type(exc).__name__}: {_reason(exc)}") from None
        finally:
            store.dispose()
        settings = settings.model_copy(update={"migrate_on_start": False})
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port or settings.port,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=20,
    )
    return 0


def _check_config(args: argparse.Namespace) -> int:
    _settings()
    print("configuration ok")
    return 0


def _database_url() -> str:
    try:
        return DatabaseSettings().database_url.get_secret_value()
    except ValidationError as exc:
        raise Failed("\n".join(f"{PROG}: {line}" for line in config_errors(exc)), status=2) from None


def _reason(exc: SQLAlchemyError) -> str:
    """The driver's first line (no SQL, no parameters)."""
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]


def _with_store(action: Callable[[InboxStore], int], *, needs_table: bool = True) -> int:
    """Run ``action`` on the inbox; an unreachable database or a missing table is one line, not a traceback."""
    try:
        store = InboxStore(_database_url(), pool_size=1)
    except SQLAlchemyError as exc:
        raise Failed(f"{PROG}: DATABASE_URL is not usable: {type(exc).__name__}") from None
    try:
        if needs_table and store.schema_state().current is None:
            raise Failed(f"{PROG}: the inbox table does not exist yet: run `{PROG} migrate` (or start the service)")
        return action(store)
    except SQLAlchemyError as exc:
        raise Failed(f"{PROG}: the inbox database failed: {type(exc).__name__}: {_reason(exc)}") from None
    finally:
        store.dispose()


def _migrate(args: argparse.Namespace) -> int:
    def run(store: InboxStore) -> int:
        try:
            before, after = store.migrate()
        except SchemaError as exc:
            raise Failed(f"{PROG}: {exc}") from None
        print(f"inbox schema at {after}" + (" (nothing to do)" if before == after else f" (was {before or 'empty'})"))
        return 0

    return _with_store(run, needs_table=False)


def _list(args: argparse.Namespace) -> int:
    def run(store: InboxStore) -> int:
        letters = store.dead_letters(limit=args.limit + 1)
        more = len(letters) > args.limit
        letters = letters[: args.limit]
        if args.json:
            print(
                json.dumps(
                    [
                        {
                            "id": d.id,
                            "event": d.event,
                            "order_id": d.order_id,
                            "attempts": d.attempts,
                            "reason": d.reason,
                            "received_at": d.received_at.isoformat() + "Z",
                            "updated_at": d.updated_at.isoformat() + "Z",
                        }
                        for d in letters
                    ],
                    indent=2,
                )
            )
        else:
            for d in letters:
                print(f"{d.id}\t{d.event}\t{d.order_id}\tattempts={d.attempts}\t{d.reason}")
        if more:
            print(f"{len(letters)} dead letter(s) shown: stopped at --limit {args.limit}; more exist", file=sys.stderr)
        else:
            print(f"{len(letters)} dead letter(s)", file=sys.stderr)
        return 0

    return _with_store(run)


def _replay(args: argparse.Namespace) -> int:
    def run(store: InboxStore) -> int:
        try:
            letter = store.replay(args.id)
        except KeyError as exc:
            raise Failed(f"{PROG}: {exc.args[0]}") from None
        print(f"replaying {letter.id} ({letter.event} order {letter.order_id}): pending again, attempts reset")
        return 0

    return _with_store(run)


def _since(value: str) -> datetime:
    """An ISO 8601 time with its zone (``2026-01-01T00:00:00Z``), as naive UTC."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 time like 2026-01-01T00:00:00Z") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} has no zone: add Z (UTC) or an offset like +02:00")
    return moment.astimezone(UTC).replace(tzinfo=None)


def _catch_up(args: argparse.Namespace) -> int:
    """One catch-up read now (after a long outage: ``--since`` before it began), with the pod's environment;
    the rows it adds are worked by the running replicas' workers."""
    import asyncio

    from service_src.common.http import HttpSession

    from .catchup import CatchUp, CatchUpError
    from .metrics import Metrics

    settings = _settings()
    configure_logging("ERROR")  # the result is the command's one line: no per-order or per-retry narration

    async def run(store: InboxStore) -> int:
        http = HttpSession(timeout_seconds=settings.saleor_timeout_seconds)
        try:
            catch_up = CatchUp(settings, store, http, Metrics())
            for _ in range(args.wait_seconds + 1):  # another replica's run ends within its page reads
                result = await catch_up.run_once(args.since)
                if result.read_until is not None:
                    print(result.line())
                    return 0
                await asyncio.sleep(1)
            raise Failed(f"{PROG}: another replica held the catch-up lock for {args.wait_seconds} s; run again")
        except CatchUpError as exc:
            raise Failed(f"{PROG}: catch-up failed: {exc}") from None
        finally:
            await http.aclose()

    return _with_store(lambda store: asyncio.run(run(store)))


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments are one line on stderr, the usage folded into it (argparse prints two). Subcommands'
    parsers are made of the same class."""

    def error(self, message: str) -> NoReturn:
        usage = " ".join(self.format_usage().split()).removeprefix("usage: ")
        self.exit(2, f"error: {message} (usage: {usage})\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description="Saleor order webhooks -> CMP instances")
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="serve the webhooks and run the worker (default)")
    serve.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a pod listens on all its interfaces
    serve.add_argument("--port", type=int, default=None, help="default: PORT")
    serve.set_defaults(func=_serve)
    check = commands.add_parser("check-config", help="validate the environment the service reads, then exit")
    check.set_defaults(func=_check_config)
    migrate = commands.add_parser("migrate", help="upgrade the inbox schema to this release's revision")
    migrate.set_defaults(func=_migrate)
    dead = commands.add_parser("dead-letters", help="show or replay deliveries that failed for good")
    dead_commands = dead.add_subparsers(dest="dead_command", required=True)
    listing = dead_commands.add_parser("list", help="list dead letters with their reasons")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--limit", type=_positive, default=1000, help="at most this many (default 1000)")
    listing.set_defaults(func=_list)
    replay = dead_commands.add_parser("replay", help="make a dead letter pending again")
    replay.add_argument("id", type=int)
    replay.set_defaults(func=_replay)
    catch_up = commands.add_parser("catch-up", help="read Saleor's paid and cancelled orders into the inbox now")
    catch_up.add_argument("--since", type=_since, default=None,
                          help="read orders changed since this time (default: the cursor minus the overlap)")
    catch_up.add_argument("--wait-seconds", type=int, default=60, help="wait this long for another replica's run")
    catch_up.set_defaults(func=_catch_up)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in {*COMMANDS, "-h", "--help"}:
        argv = ["serve", *argv]  # `cmp-provisioner --port 8001` is `cmp-provisioner serve --port 8001`
    args = parser.parse_args(argv)
    # Alembic narrates each step at INFO ("Context impl ..."); the commands and the service say what happened.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        return args.func(args)
    except Failed as exc:
        print(exc, file=sys.stderr)
        return exc.status


if __name__ == "__main__":
    sys.exit(main())

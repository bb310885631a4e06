"""``cmp-provisioner``: serve the webhooks (default), or list and replay dead letters.

    cmp-provisioner [serve] [--host 0.0.0.0] [--port 8000]
    cmp-provisioner dead-letters list [--json]
    cmp-provisioner dead-letters replay ID

The dead-letter commands read only DATABASE_URL, so an operator can run them with the pod's environment
(``kubectl exec deploy/cmp-provisioner -- cmp-provisioner dead-letters list``) or against a local SQLite file.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

import structlog
from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from .inbox import InboxStore


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    database_url: SecretStr = SecretStr("sqlite:////tmp/cmp-provisioner.db")


def configure_logging(level: str) -> None:
    """JSON lines on stdout; bodies, signatures and tokens are never passed to the logger."""
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stdout)
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLevelName(level)))  # one line per call
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app
    from .settings import ProvisionerSettings

    try:
        settings = ProvisionerSettings()
    except ValidationError as exc:
        for error in exc.errors():
            name = ".".join(str(p) for p in error["loc"]).upper() or "settings"
            print(f"cmp-provisioner: {name}: {error['msg']}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
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


def _store() -> InboxStore:
    return InboxStore(DatabaseSettings().database_url.get_secret_value(), pool_size=1)


def _list(args: argparse.Namespace) -> int:
    store = _store()
    letters = store.dead_letters()
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
        print(f"{len(letters)} dead letter(s)", file=sys.stderr)
    store.dispose()
    return 0


def _replay(args: argparse.Namespace) -> int:
    store = _store()
    try:
        letter = store.replay(args.id)
    except KeyError as exc:
        print(f"cmp-provisioner: {exc.args[0]}", file=sys.stderr)
        return 1
    finally:
        store.dispose()
    print(f"replaying {letter.id} ({letter.event} order {letter.order_id}): pending again, attempts reset")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cmp-provisioner", description="Saleor order webhooks -> CMP instances")
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="serve the webhooks and run the worker (default)")
    serve.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a pod listens on all its interfaces
    serve.add_argument("--port", type=int, default=None, help="default: PORT")
    serve.set_defaults(func=_serve)
    dead = commands.add_parser("dead-letters", help="show or replay deliveries that failed for good")
    dead_commands = dead.add_subparsers(dest="dead_command", required=True)
    listing = dead_commands.add_parser("list", help="list dead letters with their reasons")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_list)
    replay = dead_commands.add_parser("replay", help="make a dead letter pending again")
    replay.add_argument("id", type=int)
    replay.set_defaults(func=_replay)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["serve", *(argv if argv is not None else sys.argv[1:])])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

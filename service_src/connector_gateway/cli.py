"""``cmp-connector-gateway``: serve the gateway with uvicorn (uvloop + httptools) on PORT.

``cmp-connector-gateway check-config`` reads the same environment as the service and exits 0, or exits 2
with one line per bad variable, without starting anything.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from pydantic import ValidationError

from service_src.connector_gateway.settings import GatewaySettings, settings_errors

PROG = "cmp-connector-gateway"


def load_settings() -> GatewaySettings | None:
    """The settings, or None after printing one line per bad variable to stderr."""
    try:
        return GatewaySettings()
    except ValidationError as exc:
        for line in settings_errors(exc):
            print(f"{PROG}: {line}", file=sys.stderr)
        return None


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments are one line on stderr, the usage folded into it (argparse prints two)."""

    def error(self, message: str) -> NoReturn:
        usage = " ".join(self.format_usage().split()).removeprefix("usage: ")
        self.exit(2, f"error: {message} (usage: {usage})\n")


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", choices=["serve", "check-config"], default="serve",
                        help="serve (the default) or check-config")
    parser.add_argument("--host", default="0.0.0.0", help="listen address (default 0.0.0.0)")  # noqa: S104
    parser.add_argument("--port", type=int, default=None, help="listen port (default PORT or 8000)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default WORKERS or 1)")
    args = parser.parse_args(argv)
    settings = load_settings()
    if settings is None:
        return 2
    if args.command == "check-config":
        print(f"{PROG}: configuration ok")
        return 0
    import uvicorn  # here, not at the top: check-config answers without uvicorn's seconds of imports

    # Each worker process makes its app with served_app, which sets up the service's logging there first.
    uvicorn.run(
        "service_src.connector_gateway.app:served_app",
        factory=True,
        log_config=None,
        host=args.host,
        port=args.port or settings.port,
        workers=args.workers or settings.workers,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level.lower(),
        access_log=False,
        proxy_headers=False,
        server_header=False,
        date_header=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``cmp-connector-gateway``: serve the gateway with uvicorn (uvloop + httptools) on PORT."""

from __future__ import annotations

import argparse
import logging
import sys

from pydantic import ValidationError

from service_src.connector_gateway.settings import GatewaySettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cmp-connector-gateway", description=__doc__)
    parser.add_argument("--host", default="0.0.0.0", help="listen address (default 0.0.0.0)")  # noqa: S104
    parser.add_argument("--port", type=int, default=None, help="listen port (default PORT or 8000)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default WORKERS or 1)")
    args = parser.parse_args(argv)
    try:
        settings = GatewaySettings()
    except ValidationError as exc:
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]).upper() or "settings"
            print(f"cmp-connector-gateway: {name}: {err['msg']}", file=sys.stderr)
        return 2
    import uvicorn

    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s %(message)s")
    uvicorn.run(
        "service_src.connector_gateway.app:create_app",
        factory=True,
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

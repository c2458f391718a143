"""``python -m ari_app.demo_backend --port 8765 [--db demo.sqlite3]`` (secret from IVA_DEMO_SECRET)."""

from __future__ import annotations

import argparse
import sys

from aiohttp import web

from ari_app.demo_backend.app import SECRET_ENV, create_app


def main() -> None:
    parser = argparse.ArgumentParser(description="Demo backend for the reference flows")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--db", default=":memory:", help="sqlite file (default: in memory, fresh seed)")
    args = parser.parse_args()
    try:
        app = create_app(args.db)
    except ValueError as e:
        sys.exit(f"error: {e} (e.g. export {SECRET_ENV}=change-me)")
    web.run_app(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()

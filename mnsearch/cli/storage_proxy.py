"""`mnsearch storage-proxy`: serve a database to sweep workers through Optuna's gRPC proxy.

Workers then pass `--storage grpc://HOST:PORT` and open no database connection of their own
(`mnsearch.search.grpc_proxy`). The database URL, password included, stays with the proxy and
is shown masked.
"""

from __future__ import annotations

import argparse
from typing import Any

from mnsearch.cli.common import tcp_port
from mnsearch.search.grpc_proxy import DEFAULT_PORT


def add_storage_proxy_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "storage-proxy", help="serve a database to sweep workers over gRPC (Optuna's proxy)",
        description="Run Optuna's gRPC storage proxy in front of a database, so that many "
        "workers (mnsearch sweep --storage grpc://HOST:PORT) share its connections. The "
        "channel is not encrypted: bind a trusted network only. Ctrl-C stops it.")
    parser.add_argument("--storage", required=True,
                        help="the database: an RDB URL such as postgresql://user:password@host/db")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default "
                        "127.0.0.1: this machine only; 0.0.0.0 for workers on other machines)")
    parser.add_argument("--port", type=tcp_port, default=DEFAULT_PORT,
                        help="TCP port, 1 to 65535 (default %(default)s)")
    parser.set_defaults(handler=storage_proxy_command)


def storage_proxy_command(args: argparse.Namespace) -> int:
    from mnsearch.search.grpc_proxy import check_backend, serve_proxy
    from mnsearch.search.storage import mask_password, open_storage

    check_backend(args.storage)
    storage = open_storage(args.storage)  # an unreachable database fails here, masked

    def ready() -> None:
        print(f"storage proxy for {mask_password(args.storage)} on grpc://{args.host}:"
              f"{args.port} (Ctrl-C stops it)", flush=True)

    serve_proxy(storage, args.host, args.port, ready)
    return 0

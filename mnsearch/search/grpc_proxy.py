"""The gRPC storage proxy: Optuna's documented way past one database server.

Each worker of a sweep on PostgreSQL holds connections of its own, so many workers load one
server with connections and queries. Optuna's answer is a proxy:
`optuna.storages.run_grpc_proxy_server` serves one storage over gRPC (`mnsearch
storage-proxy`), workers reach it with `--storage grpc://HOST:PORT`
(`optuna.storages.GrpcStorageProxy`), and several proxies may front one database. Behind a
proxy a worker sees only Optuna's storage API, so the study's lock is a lock study
(`search.locks`).

The proxy serves RDB storages only: Optuna documents that a journal behind it fails
(optuna/optuna#6084), so a journal path is refused, and so is a proxy behind a proxy. Its
gRPC channel is neither encrypted nor authenticated (whoever reaches the port reads and writes
every study), so it binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import queue
import socket
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import BaseStorage, GrpcStorageProxy

from mnsearch.errors import MnsearchError

SCHEME = "grpc://"
DEFAULT_PORT = 13000
READY_SECONDS = 5.0  # how long a worker waits for the proxy to answer before giving up
STOP_GRACE_SECONDS = 5.0  # how long a stopping proxy lets calls in flight finish
HANDLER_THREADS = 10  # Optuna's default pool size for the proxy
_FORM = "grpc://HOST:PORT"


class ProxyError(MnsearchError):
    """A proxy address that is malformed, a proxy that cannot be reached or served."""


def is_proxy_url(url: str | None) -> bool:
    return bool(url) and str(url).lower().startswith(SCHEME)


def proxy_address(url: str) -> tuple[str, int]:
    """`grpc://HOST:PORT` as (host, port); the port defaults to Optuna's 13000.

    Nothing else is accepted: a proxy takes no user, password, path or query (and an error
    never repeats the URL, which might hold a password by mistake).
    """
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise ProxyError(f"bad gRPC storage address: expected {_FORM} with a port from 1 to "
                         "65535") from None
    if "@" in parts.netloc or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ProxyError(f"bad gRPC storage address: expected {_FORM}, with no user, password, "
                         "path or query (the proxy holds the database's credentials)")
    if not parts.hostname or port == 0:
        raise ProxyError(f"bad gRPC storage address: expected {_FORM}, got no "
                         f"{'host' if not parts.hostname else 'port from 1 to 65535'}")
    return parts.hostname, port or DEFAULT_PORT


def connect_proxy(url: str, timeout: float | None = None) -> GrpcStorageProxy:
    """A client of the proxy at `url`, once it answers; a ProxyError line after `timeout`
    seconds (default READY_SECONDS) without an answer (gRPC itself would fail at the first
    call, a traceback in the middle of a sweep)."""
    timeout = READY_SECONDS if timeout is None else timeout
    host, port = proxy_address(url)
    target = f"[{host}]" if ":" in host else host  # an IPv6 address
    try:
        with _quiet():
            proxy = GrpcStorageProxy(host=target, port=port)
    except ImportError:
        raise ProxyError("grpc:// storages need grpcio and protobuf: pip install "
                         "'mnsearch[grpc]'") from None
    try:
        proxy.wait_server_ready(timeout=timeout)
    except ConnectionError:
        proxy.close()
        raise ProxyError(f"no storage proxy answers at {SCHEME}{target}:{port} (waited "
                         f"{timeout:g} s): start `mnsearch storage-proxy` there, or check the "
                         "host and port") from None
    return proxy


def check_backend(url: str | None) -> None:
    """Refuse, as one line, a storage the proxy cannot serve: a journal, or another proxy."""
    if not url or "://" not in url:
        raise ProxyError("the proxy serves an RDB storage (postgresql://user:password@host/db): "
                         "Optuna's proxy fails on a journal file (optuna/optuna#6084)")
    if is_proxy_url(url):
        raise ProxyError("the proxy serves a database, not another proxy: pass "
                         "postgresql://user:password@host/db")


def serve_proxy(storage: BaseStorage, host: str, port: int,
                on_ready: Callable[[], None] = lambda: None,
                grace: float = STOP_GRACE_SECONDS) -> None:
    """Serve `storage` on host:port until interrupted (Ctrl-C ends it as KeyboardInterrupt).
    Calls `on_ready` once the server listens.

    On the way out the server is stopped explicitly: calls in flight get `grace` seconds, then
    are cancelled. Its handlers run on daemon threads (`_DaemonExecutor`), so a storage call
    that never returns (a database that stopped answering) cannot hold the stopped process
    open: the database rolls back what a closed connection left unfinished.
    """
    _check_free(host, port)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no line per lock study
    executor = _DaemonExecutor(HANDLER_THREADS)
    try:
        with _quiet():
            # get_storage adds Optuna's trial cache, as run_grpc_proxy_server's docs ask
            server = _make_server(optuna.storages.get_storage(storage), host, port, executor)
    except RuntimeError as error:  # gRPC's "Failed to bind": the port was taken meanwhile
        raise ProxyError(f"cannot listen on {host}:{port}: {error}") from None
    server.start()
    on_ready()
    try:
        server.wait_for_termination()
    finally:
        server.stop(grace).wait(grace + 1.0)
        executor.shutdown(wait=False)


def _make_server(storage: BaseStorage, host: str, port: int, executor: Executor) -> Any:
    """`optuna.storages.run_grpc_proxy_server`'s server, not yet started: that function
    serves until the process ends and never stops its server, so a Ctrl-C left calls in flight
    and its handler threads (joined at exit) running. Its `make_server` is private in Optuna
    4.2 to 5.0; this is the only use of it."""
    from optuna.storages._grpc.server import make_server

    return make_server(storage, host, port, executor)  # type: ignore[arg-type]


class _DaemonExecutor(Executor):
    """The smallest executor gRPC's server needs (`submit`), on daemon threads.

    Why not `concurrent.futures.ThreadPoolExecutor`: Python joins its threads at exit, so one
    handler stuck in a storage call keeps a Ctrl-C'd proxy alive for good (tests/search/
    test_grpc.py reproduces it with a storage that never answers).
    """

    def __init__(self, threads: int) -> None:
        self._work: queue.SimpleQueue[tuple[Future, Callable, tuple, dict] | None] = \
            queue.SimpleQueue()
        self._closed = False
        self._threads = [threading.Thread(target=self._serve, daemon=True,
                                          name=f"storage-proxy-{index}")
                         for index in range(threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        if self._closed:
            raise RuntimeError("cannot schedule new calls after shutdown")
        future: Future = Future()
        self._work.put((future, fn, args, kwargs))
        return future

    def shutdown(self, wait: bool = True) -> None:  # type: ignore[override]
        self._closed = True
        for _ in self._threads:
            self._work.put(None)
        if wait:
            for thread in self._threads:
                thread.join()

    def _serve(self) -> None:
        while (item := self._work.get()) is not None:
            future, fn, args, kwargs = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as error:  # noqa: BLE001 - handed to the caller, as a pool does
                future.set_exception(error)


def _check_free(host: str, port: int) -> None:
    """Bind the port once without SO_REUSEPORT: gRPC sets it, so two proxies would otherwise
    share one port (and its clients) without a word."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise ProxyError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    family, kind, protocol, _, address = infos[0]
    with socket.socket(family, kind, protocol) as probe:
        try:
            probe.bind(address)
        except OSError as error:
            raise ProxyError(f"cannot listen on {host}:{port}: {error.strerror} (another "
                             "proxy there? pass --port)") from None


@contextmanager
def _quiet() -> Iterator[None]:
    """Without Optuna's ExperimentalWarning: the proxy is experimental in Optuna 4.2 to 5.0,
    and every worker would print it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        yield

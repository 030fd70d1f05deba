"""Running the sandbox: ``SandboxServer`` (uvicorn in a background thread) and the CLI ``main``.

The listening socket is bound here, not by uvicorn, so ``port=0`` yields the real port before the
first request and ``base_url`` is known as soon as ``start()`` returns.
"""

from __future__ import annotations

import argparse
import copy
import ipaddress
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import uvicorn
from fastapi import FastAPI

from .app import create_app
from .state import DEFAULT_TOKEN_LIFETIME, DEFAULT_VERSION, SandboxState
from .users import SandboxUser, parse_user_spec

logger = logging.getLogger(__name__)

READY_LINE = "Preservica sandbox ready at {url}"


def _bind(host: str, port: int) -> socket.socket:
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:  # a host name
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class SandboxServer:
    """A sandbox on a background thread: ``with SandboxServer() as sandbox: ... sandbox.base_url ...``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token_lifetime: float = DEFAULT_TOKEN_LIFETIME,
        users: Iterable[SandboxUser | str] | None = None,
        data_dir: str | Path | None = None,
        version: str = DEFAULT_VERSION,
        log_level: str = "warning",
        state: SandboxState | None = None,
        log_config: dict[str, Any] | None = None,
        seed_assets: int = 0,
        seed_file: str | Path | None = None,
        seed_random: int = 42,
        security_tags: Sequence[str] | None = None,
        entity_action_seconds: float | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.state = state or SandboxState(
            users=users, token_lifetime=token_lifetime, version=version, data_dir=data_dir
        )
        config: dict[str, Any] = {}
        if security_tags is not None:
            config["security_tags"] = list(security_tags)
        if entity_action_seconds is not None:
            config["entity_action_seconds"] = entity_action_seconds
        if config:
            self.state.update_config(config)  # ValueError for bad values
        if seed_assets or seed_file is not None:
            # Replaces whatever the data directory held: asking for a seed means asking for this repository.
            self.state.repository.seed(assets=seed_assets, random_seed=seed_random, file=seed_file)
        self.app: FastAPI = create_app(self.state)
        self._log_level = log_level
        self._log_config = log_config
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def base_url(self) -> str:
        return f"http://{_url_host(self.host)}:{self.port}"

    @property
    def server(self) -> str:
        """``host:port`` as pyPreservica's ``server=`` argument wants it (use with ``protocol="http"``)."""
        return f"{_url_host(self.host)}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 15.0) -> SandboxServer:
        """Start serving; returns once the server accepts connections."""
        if self.running:
            return self
        self._socket = _bind(self.host, self.port)
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level=self._log_level,
            log_config=self._log_config,
            lifespan="off",
            timeout_graceful_shutdown=2,
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name="preservica-sandbox",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                self._close_socket()
                raise RuntimeError("Preservica sandbox failed to start (see the uvicorn log)")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"Preservica sandbox did not start within {timeout} s")
            time.sleep(0.01)
        self._wait_accepting(deadline)
        logger.info("Preservica sandbox serving at %s", self.base_url)
        return self

    def _wait_accepting(self, deadline: float) -> None:
        connect_host = self.host if self.host not in ("0.0.0.0", "::") else "127.0.0.1"
        while True:
            try:
                with socket.create_connection((connect_host, self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving (open keep-alive connections are closed) and flush persistent state."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout)
        self._thread = None
        self._server = None
        self._close_socket()
        self.state.close()

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="preservica-sandbox",
        description="Run a local Preservica emulator (access tokens, 2FA, identity, Entity and Content APIs; "
        "/_sandbox control API).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on; 0 picks a free one")
    parser.add_argument(
        "--token-lifetime",
        type=float,
        default=DEFAULT_TOKEN_LIFETIME,
        help="access token lifetime in seconds (default 900 = Preservica's 15 minutes)",
    )
    parser.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="NAME:PASSWORD[:TENANT[:TOTP]]",
        help="an account (repeatable); TOTP is a base32 seed that turns on 2FA. "
        "Default: archivist:archivist-password:SANDBOX",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="keep users, tokens and counters in this directory across restarts",
    )
    parser.add_argument(
        "--seed-assets",
        type=int,
        default=0,
        metavar="N",
        help="generate a repository of N assets in collections > series > files (replaces a stored one)",
    )
    parser.add_argument(
        "--seed-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="load folders and assets from a JSON (tree) or JSON-lines seed file before --seed-assets",
    )
    parser.add_argument(
        "--seed-random", type=int, default=42, metavar="SEED", help="random seed of the generator (default 42)"
    )
    parser.add_argument("--version", default=DEFAULT_VERSION, help="Preservica version to report (default 7.7.1)")
    parser.add_argument(
        "--security-tags",
        default=None,
        metavar="TAG[,TAG...]",
        help="the security tags the sandbox knows (default open,closed,public)",
    )
    parser.add_argument(
        "--entity-action-seconds",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long a move or security tag change stays ACTIVE before it is applied (default 0.2)",
    )
    parser.add_argument(
        "--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug", "trace"]
    )
    return parser


def _cli_log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging setup plus the sandbox's own loggers (user names and token prefixes only)."""
    config: dict[str, Any] = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    # stdout carries exactly one line, the ready line, for scripts that wait on it; logs go to stderr.
    config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    config["loggers"][__package__ or "preservica_sandbox"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    users: list[SandboxUser] = []
    for index, spec in enumerate(args.user, start=1):
        try:
            users.append(parse_user_spec(spec))
        except ValueError as exc:  # the spec holds a password: do not echo it
            parser.error(f"--user #{index}: {exc}")
    try:
        sandbox = SandboxServer(
            host=args.host,
            port=args.port,
            token_lifetime=args.token_lifetime,
            users=users or None,
            data_dir=args.data_dir,
            version=args.version,
            log_level=args.log_level,
            log_config=_cli_log_config(args.log_level),
            seed_assets=args.seed_assets,
            seed_file=args.seed_file,
            seed_random=args.seed_random,
            security_tags=[t.strip() for t in args.security_tags.split(",")] if args.security_tags else None,
            entity_action_seconds=args.entity_action_seconds,
        )
    except ValueError as exc:  # RepositoryError (a bad seed) is a ValueError too
        parser.error(str(exc))

    stop = threading.Event()

    def _request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            sandbox.start()
        except OSError as exc:
            print(f"preservica-sandbox: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 1
        print(READY_LINE.format(url=sandbox.base_url), flush=True)
        while not stop.wait(0.5):
            if not sandbox.running:
                print("preservica-sandbox: server stopped unexpectedly", file=sys.stderr)
                return 1
        return 0
    finally:
        sandbox.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    raise SystemExit(main())

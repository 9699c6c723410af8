"""Starting the whole sandbox: credentials, ports, services, ``endpoints.json``, clean shutdown."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import socket
import string
import threading
from dataclasses import dataclass, field
from pathlib import Path

from hca_archive.localnet import free_port
from hca_archive.sandbox import archiver, dsp, filestate
from hca_archive.sandbox.aap import TokenIssuer, aap_router
from hca_archive.sandbox.admin import AdminApi
from hca_archive.sandbox.context import Context
from hca_archive.sandbox.faults import FaultBoard
from hca_archive.sandbox.ingest import IngestApi
from hca_archive.sandbox.lamanno import default_lamanno_dir
from hca_archive.sandbox.s3 import restore_bucket, s3_client, start_moto
from hca_archive.sandbox.seeding import Seeder
from hca_archive.sandbox.store import Store
from hca_archive.sandbox.tasks import Scheduler
from hca_archive.sandbox.web import Router, ServiceServer

log = logging.getLogger(__name__)

ENDPOINTS_FILE = "endpoints.json"
STATE_FILE = "state.sqlite"
LOCK_FILE = "sandbox.lock"
FAULTED_SERVICES = ("archiver", "ingest", "dsp", "aap")


@dataclass
class SandboxOptions:
    state_dir: Path
    seed: int = 0
    plan_delay: float = 1.0
    process_delay: float = 0.5
    token_ttl: float = 3600.0
    faults: dict[str, dict[str, str]] = field(default_factory=dict)
    lamanno_dir: Path = field(default_factory=default_lamanno_dir)


def _credential(store: Store, key: str, make: str) -> str:
    """A credential of this state dir: made once, then kept in the store."""
    value = store.meta(key)
    if value is None:
        value = make
        store.set_meta(key, value)
    return value


def _port_if_free(port: int) -> int:
    """``port`` when nothing listens on it, else 0 (let the system choose)."""
    if not port:
        return 0
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` readable by the owner only, so no reader ever sees half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(temporary, path)


class StateDirBusy(RuntimeError):
    """Another sandbox already serves this state dir."""


class Sandbox:
    """All stand-ins of one state dir. ``start()`` returns once everything listens."""

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        state_dir = options.state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        self._lock = (state_dir / LOCK_FILE).open("w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise StateDirBusy(f"another sandbox is running on {state_dir}") from None
        (state_dir / ENDPOINTS_FILE).unlink(missing_ok=True)
        self.store = Store(state_dir / STATE_FILE)
        self.faults = FaultBoard()
        for service, knobs in options.faults.items():
            self.faults.set(service, knobs)
        self.stopping = threading.Event()
        token_chars = string.ascii_uppercase + string.digits
        self.credentials = {
            "archiver_api_key": _credential(self.store, "archiver_api_key", secrets.token_hex(20)),
            "aap_username": _credential(self.store, "aap_username", f"hca-{secrets.token_hex(4)}"),
            "aap_password": _credential(self.store, "aap_password", secrets.token_urlsafe(18)),
            "aws_access_key_id": _credential(
                self.store,
                "aws_access_key_id",
                "AKIA" + "".join(secrets.choice(token_chars) for _ in range(16)),
            ),
            "aws_secret_access_key": _credential(
                self.store, "aws_secret_access_key", secrets.token_urlsafe(30)
            ),
        }
        tokens = TokenIssuer(
            self.credentials["aap_username"],
            self.credentials["aap_password"],
            _credential(self.store, "jwt_secret", secrets.token_hex(32)),
            options.token_ttl,
        )
        self.ctx = Context(
            store=self.store,
            scheduler=Scheduler(self.store),
            tokens=tokens,
            state_dir=state_dir,
            bucket=_credential(self.store, "bucket", f"hca-sandbox-{secrets.token_hex(4)}"),
            archiver_api_key=self.credentials["archiver_api_key"],
            plan_delay=options.plan_delay,
            process_delay=options.process_delay,
            seed=options.seed,
        )
        self.servers: list[ServiceServer] = []
        self.moto = None

    def start(self) -> dict[str, object]:
        ctx = self.ctx
        self.moto, ctx.urls.s3 = start_moto(self._port("s3") or free_port())
        client = s3_client(
            ctx, self.credentials["aws_access_key_id"], self.credentials["aws_secret_access_key"]
        )
        restore_bucket(ctx, client)
        seeder = Seeder(ctx, client, self.options.lamanno_dir)
        routers: dict[str, Router] = {
            "archiver": archiver.ArchiverApi(ctx).router(),
            "ingest": IngestApi(ctx).router(),
            "dsp": dsp.DspApi(ctx).router(),
            "aap": aap_router(ctx.tokens),
            "admin": AdminApi(ctx, seeder, self.faults).router(),
        }
        for name, router in routers.items():
            faults = self.faults if name in FAULTED_SERVICES else None
            server = ServiceServer(name, router, self._port(name), faults, self.stopping)
            self.servers.append(server)
            setattr(ctx.urls, name, server.url)
        ctx.urls.aap = f"{ctx.urls.aap}/auth"
        self.store.set_meta("port:s3", ctx.urls.s3.rsplit(":", 1)[1])
        for server in self.servers:
            self.store.set_meta(f"port:{server.name}", str(server.port))
        ctx.scheduler.register("build", lambda p: archiver.build_archive_submission(ctx, p))
        ctx.scheduler.register(
            "complete",
            lambda p: archiver.complete_submission(
                ctx, p, lambda: self.faults.current("archiver").die_after_dsp_completes
            ),
        )
        ctx.scheduler.register("process", lambda p: dsp.process(ctx, p))
        ctx.scheduler.register(
            "check_upload", lambda p: filestate.check_upload(ctx, p["upload_id"])
        )
        ctx.scheduler.start()
        for server in self.servers:
            server.start()
        endpoints = {
            "archiver_url": ctx.urls.archiver,
            "ingest_url": ctx.urls.ingest,
            "dsp_url": ctx.urls.dsp,
            "aap_url": ctx.urls.aap,
            "s3_endpoint_url": ctx.urls.s3,
            "admin_url": ctx.urls.admin,
            "bucket": ctx.bucket,
            **self.credentials,
        }
        write_atomically(self.options.state_dir / ENDPOINTS_FILE, json.dumps(endpoints, indent=2))
        log.info("sandbox listening; endpoints in %s", self.options.state_dir / ENDPOINTS_FILE)
        return endpoints

    def stop(self) -> None:
        (self.options.state_dir / ENDPOINTS_FILE).unlink(missing_ok=True)
        self.stopping.set()
        for server in self.servers:
            server.stop()
        self.ctx.scheduler.stop()
        if self.moto is not None:
            self.moto.stop()
        self.store.close()
        self._lock.close()

    def _port(self, service: str) -> int:
        return _port_if_free(int(self.store.meta(f"port:{service}") or 0))

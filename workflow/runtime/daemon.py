"""The daemon: APScheduler (in memory) only wakes the ticker.

Two jobs: an interval tick (the safety net; it also notices calendars moved
by another process) and one date job, `next-deadline`, re-armed after every
tick for the earliest unfired deadline. Deadlines live in the database, so
nothing is lost when the process dies: at start the daemon first catches up
every overdue deadline, in calendar order, one bounded batch per tick.

A stop (SIGTERM, SIGINT) is bounded by [gongmo] stop_timeout_s: nothing new is
claimed, the chunk in hand (a bulk move or an announcement commits a chunk at a
time) commits, the deadline rows still claimed are given back, and the process
exits; the next start, or another replica, takes the rest at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from gongmo.notifications.render import TemplateProblem
from gongmo.states.errors import InvalidInput
from gongmo.workflow.core.config import Api
from gongmo.workflow.deadlines.ticker import Fired, Ticker
from gongmo.workflow.engine.app import App
from gongmo.workflow.outbox.dispatch import Delivery, Mailer, transport_for
from gongmo.workflow.runtime.metrics import Metrics

log = logging.getLogger("gongmo.daemon")

# What the daemon serves over HTTP, built for it by whoever starts it (the CLI passes the API's
# create_api): the API sits above the runtime, so the daemon does not import it.
ApiApp = Callable[[App, "Daemon"], Any]


# The libraries whose INFO lines would fill the log ("Running job ... executed successfully" every
# tick, every state transitions enters): WARNING unless --verbose.
LIBRARY_LOGGERS = ("apscheduler", "transitions", "uvicorn", "aiosmtplib", "aiosmtpd", "alembic", "httpx")
# SQLAlchemy logs every statement at INFO: never, --verbose or not.
NEVER_INFO = ("sqlalchemy",)


def configure_logging(verbose: bool = False) -> None:
    """gongmo's own events at INFO; the libraries at WARNING, or at INFO with --verbose.

    A handler on stderr is added only if the process has none (a test's capture, or an
    embedding program's handlers, stay as they are)."""
    logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s %(message)s")
    level = logging.INFO if verbose else logging.WARNING
    logging.getLogger().setLevel(level)  # any other library
    logging.getLogger("gongmo").setLevel(logging.INFO)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(level)
    for name in NEVER_INFO:
        logging.getLogger(name).setLevel(logging.WARNING)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Daemon:
    def __init__(
        self, app: App, worker: str | None = None, api: Api | None = None, api_app: ApiApp | None = None
    ) -> None:
        self.app = app
        self.api_settings = api or app.loaded.config.api
        self.api_app = api_app
        self.ticker = Ticker(app, worker or worker_name())
        self.tick_seconds = app.loaded.config.gongmo.tick_seconds
        self.stop_timeout_s = app.loaded.config.gongmo.stop_timeout_s
        self.unfinished = False  # a tick still ran when the stop's time was up
        self._busy = threading.Lock()
        self.scheduler: AsyncIOScheduler | None = None
        self.fired: list[Fired] = []
        self.delivered: list[Delivery] = []
        self.mailer: Mailer
        self.metrics = Metrics(app)
        self.last_tick_at: datetime | None = None
        self.api_server: ApiServer | None = None
        self._delivering: asyncio.Task[Any] | None = None

    def check_templates(self) -> None:
        problems = self.app.renderer.check()
        if problems:
            raise TemplateProblem("templates have problems:\n" + "\n".join(problems))

    def wake(self) -> None:
        """Tick until nothing is due (each tick a bounded batch, so catch-up after
        downtime goes in calendar order, a batch at a time), then re-arm.
        Skipped if a tick is already running in this process, or the daemon stops."""
        stopping = self.ticker.stopping
        if stopping.is_set() or not self._busy.acquire(blocking=False):
            return
        try:
            while not stopping.is_set():
                started = time.perf_counter()
                batch = self.ticker.tick()
                self.metrics.tick_seconds.observe(time.perf_counter() - started)
                self.metrics.fired([f for f in batch if f.error is None])  # not a failure, a held call or a stop
                if not batch:
                    break
                self.fired.extend(batch)
            self.last_tick_at = self.app.clock.now()
        finally:
            self._busy.release()
        if not stopping.is_set():
            self._arm()

    def health(self) -> dict[str, Any]:
        running = self.scheduler is not None and bool(self.scheduler.running)
        due = self.ticker.next_due() if running else None
        return {
            "running": running,
            "worker": self.ticker.worker,
            "last_tick_at": self.last_tick_at.isoformat() if self.last_tick_at else None,
            "next_due": due.isoformat() if due else None,
        }

    def _arm(self) -> None:
        scheduler = self.scheduler  # read once: a stop sets it to None meanwhile
        if scheduler is None:
            return
        due = self.ticker.next_due()
        if due is None:
            return
        # The engine's clock decides what is due; the timer counts the delay on
        # the wall clock (the same clock in production).
        delay = max(due - self.app.clock.now(), timedelta(0))
        scheduler.add_job(
            self.wake,
            "date",
            run_date=datetime.now(UTC) + delay,
            id="next-deadline",
            replace_existing=True,
            misfire_grace_time=None,
            max_instances=2,  # it may be re-armed from inside its own run
        )

    async def serve(self, stop: asyncio.Event) -> None:
        self.check_templates()
        transport = transport_for(self.app)  # a missing password refuses the start before anything binds
        # Bind the API's port before anything runs: a daemon that cannot serve stops untouched.
        settings = self.api_settings
        if settings.enabled and self.api_app is None:
            raise RuntimeError("[api] enabled, but the daemon was given no API app to serve (api_app=create_api)")
        sock = _listen(settings.host, settings.port) if settings.enabled else None
        scheduler = AsyncIOScheduler(timezone=UTC)
        self.scheduler = scheduler
        scheduler.add_job(
            self.wake,
            "interval",
            seconds=self.tick_seconds,
            id="tick",
            next_run_time=datetime.now(UTC),  # catch up at once
            misfire_grace_time=None,
            coalesce=True,
            max_instances=1,
        )
        self.mailer = Mailer(self.app, transport, self.ticker.worker, report=log.warning)
        scheduler.add_job(
            self.deliver,
            "interval",
            seconds=self.app.loaded.config.mail.deliver_seconds,
            id="deliver",
            next_run_time=datetime.now(UTC),
            misfire_grace_time=None,
            coalesce=True,
            max_instances=1,
        )
        scheduler.start()
        log.info("gongmo daemon %s: ticking every %ss", self.ticker.worker, self.tick_seconds)
        loop = asyncio.get_running_loop()
        stopped_at: float | None = None
        try:
            async with self._api(sock):
                await stop.wait()
                stopped_at = loop.time()
                self.ticker.stopping.set()  # at once: the API's own wind-down comes next
                log.info("stopping: nothing new is claimed; the work in hand ends (at most %ss)", self.stop_timeout_s)
        finally:
            self.ticker.stopping.set()
            scheduler.pause()  # nothing new starts
            # Keep a second for giving the leases back and leaving.
            end = (stopped_at if stopped_at is not None else loop.time()) + max(self.stop_timeout_s - 1.0, 0.5)
            await asyncio.gather(self._wind_down_delivery(end), self._wind_down_ticks(end))
            # No job is running now (unless a tick overran the bound): nothing is cancelled under it.
            scheduler.shutdown(wait=False)
            self.scheduler = None
            await self.mailer.transport.close()

    async def _wind_down_ticks(self, end: float) -> None:
        """Wait (until `end`) for a tick in progress to stop after its chunk, then
        give back the deadline rows this daemon still holds."""
        loop = asyncio.get_running_loop()
        while self._busy.locked() and loop.time() < end:
            await asyncio.sleep(0.05)
        if self._busy.locked():
            self.unfinished = True
            log.warning(
                "stop: a deadline chunk still runs after [gongmo] stop_timeout_s = %ss; leaving it:"
                " its transaction rolls back and its rows come back after their lease",
                self.stop_timeout_s,
            )
            return
        released = await asyncio.to_thread(self.ticker.release_all)
        if released:
            log.info("stop: %s deadline claim(s) given back; the next daemon takes them at once", released)

    async def _wind_down_delivery(self, end: float | None = None) -> None:
        """The messages on the wire finish and are marked; the rest of the claimed
        batch goes back to the outbox at once, not after its lease."""
        self.mailer.stop()
        task = self._delivering
        if task is None or task.done():
            return
        grace = self.app.loaded.config.mail.smtp.timeout_s + 5
        if end is not None:
            grace = max(min(grace, end - asyncio.get_running_loop().time()), 0.1)
        await asyncio.wait({task}, timeout=grace)
        if not task.done():
            log.warning("outbox: delivery did not stop within %ss; its rows come back after their lease", grace)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @contextlib.asynccontextmanager
    async def _api(self, sock: socket.socket | None) -> Any:
        """Serve the HTTP API on the daemon's event loop while the daemon runs."""
        settings = self.api_settings
        if sock is None or self.api_app is None:
            yield
            return
        config = uvicorn.Config(
            self.api_app(self.app, self),
            host=settings.host,
            port=settings.port,
            lifespan="off",
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=max(int(self.stop_timeout_s / 4), 1),  # requests in flight, within the bound
        )
        server = ApiServer(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if task.done():
            task.result()
            raise InvalidInput(f"the HTTP API on {settings.host}:{settings.port} stopped as it started")
        self.api_server = server
        log.info("HTTP API on http://%s:%s (docs at /docs)", settings.host, server.port)
        try:
            yield
        finally:
            server.should_exit = True
            await task
            self.api_server = None

    async def deliver(self) -> None:
        """Send what the outbox has due (on the event loop: aiosmtplib is async).
        Each dead notice is logged by the mailer as it is marked."""
        self._delivering = asyncio.current_task()
        result = await self.mailer.deliver_due()
        self.delivered.append(result)
        self.metrics.delivered(result)
        if result.sent or result.retry or result.dead:
            log.info("outbox: %s sent, %s to retry, %s dead", result.sent, result.retry, result.dead)


def _listen(host: str, port: int) -> socket.socket:
    """Bind the API's socket ourselves, to say clearly why it cannot be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only
    # then; without it every answer waits for the client's delayed ACK (~40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InvalidInput(
            f"[api] {host}:{port}: cannot listen ({exc.strerror}); another daemon may hold the port:"
            " give this one its own [api] port, or set [api] enabled = false"
        ) from None
    sock.set_inheritable(True)
    return sock


class ApiServer(uvicorn.Server):
    """uvicorn, minus its signal handlers: the daemon owns SIGINT and SIGTERM
    and stops the API with the scheduler."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    @property
    def port(self) -> int:
        """The port listened on (the configured one, or the one picked for port 0)."""
        for server in self.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return int(self.config.port)


def run_forever(app: App, api: Api | None = None, api_app: ApiApp | None = None) -> None:
    daemon = Daemon(app, api=api, api_app=api_app)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await daemon.serve(stop)
        if daemon.unfinished:  # the tick's thread cannot be stopped; the bound is kept
            logging.shutdown()
            os._exit(0)

    asyncio.run(main())
    log.info("gongmo daemon %s stopped", daemon.ticker.worker)

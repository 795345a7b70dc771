"""One worker process: id-tagged JSON lines on its stdin/stdout (transport/stdiojson/PROTOCOL.md)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
import signal
from typing import Any, Callable, Mapping, Optional, Sequence

from .errors import BrokerError, OutcomeUnknown, ProtocolError, WorkerExited, WorkerNotFound, WorkerUnavailable

PROTOCOL_VERSION = 1
MAX_LINE_BYTES = 64 << 20

log = logging.getLogger("brokerkit")


class Worker:
    """A running worker. Safe for concurrent use by many tasks of one event loop; it never restarts itself
    (:class:`brokerkit.Client` does that)."""

    def __init__(self, proc: asyncio.subprocess.Process, on_event: Callable[[Mapping[str, Any]], None],
                 grace: float) -> None:
        self.proc = proc
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        self._stdin: asyncio.StreamWriter = proc.stdin
        self._stdout: asyncio.StreamReader = proc.stdout
        self._stderr: asyncio.StreamReader = proc.stderr
        self.pid: int = proc.pid
        self.returncode: Optional[int] = None
        self.exited = asyncio.Event()
        self._on_event = on_event
        self._grace = grace
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._dead: Optional[BrokerError] = None
        self._stderr_tail: collections.deque = collections.deque(maxlen=5)
        self._tasks = [asyncio.ensure_future(self._read_stdout()), asyncio.ensure_future(self._read_stderr())]

    @classmethod
    async def start(cls, argv: Sequence[str], *, env: Optional[Mapping[str, str]] = None, timeout: float = 10.0,
                    grace: float = 2.0, on_event: Callable[[Mapping[str, Any]], None] = lambda e: None) -> "Worker":
        """Starts argv and says hello (with events); raises WorkerNotFound, WorkerExited or ProtocolError."""
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=dict(env) if env is not None else None, limit=MAX_LINE_BYTES,
                start_new_session=True)
        except (FileNotFoundError, PermissionError, NotADirectoryError) as e:
            raise WorkerNotFound(
                f"cannot start the brokerkit worker {argv[0]!r}: {e.strerror or e}. Build it with `make build` "
                f"(bin/brokerkit), put `brokerkit` on $PATH, set $BROKERKIT, or pass binary=...", str(argv[0])) from e
        w = cls(proc, on_event, grace)
        try:
            hello = await w.request("hello", {"protocol": PROTOCOL_VERSION, "events": True}, timeout)
        except BaseException:
            await w.kill()
            raise
        if not isinstance(hello, dict) or hello.get("protocol") != PROTOCOL_VERSION:
            await w.kill()
            raise ProtocolError(f"worker speaks protocol {hello.get('protocol') if isinstance(hello, dict) else hello!r}, "
                                f"this client {PROTOCOL_VERSION}")
        return w

    @property
    def alive(self) -> bool:
        return self._dead is None

    async def request(self, command: str, params: Optional[Mapping[str, Any]] = None,
                      timeout: Optional[float] = None, order: bool = False) -> Any:
        """Sends one request and returns its data. On timeout or cancellation the request is canceled in the
        worker and its late answer ignored; raises BrokerError or asyncio.TimeoutError.

        With ``order`` (an order command), once the line is written a timeout or the worker's death raises
        OutcomeUnknown instead: the worker may have sent the order (PROTOCOL.md, "Orders")."""
        if self._dead is not None:
            raise self._dead
        rid = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        line = json.dumps({"id": rid, "command": command, **(params or {})}, separators=(",", ":")) + "\n"
        # A timer on the future itself rather than asyncio.wait_for: no extra task per call.
        timer = asyncio.get_running_loop().call_later(timeout, _expire, fut) if timeout is not None else None
        try:
            self._stdin.write(line.encode())
            await self._stdin.drain()
            if not order:
                return await fut
            try:
                return await fut
            except asyncio.TimeoutError as e:
                if self._pending.pop(rid, None) is not None and self._dead is None:
                    self._send_nowait({"id": next(self._ids), "command": "cancel", "target": rid})
                raise OutcomeUnknown(f"{command}: no answer within {timeout}s after it reached the worker "
                                     f"(pid {self.pid}); the order may exist") from e
            except WorkerExited as e:  # the worker's death, not its own "unavailable" answer (nothing sent)
                raise OutcomeUnknown(f"{command}: the worker (pid {self.pid}) died after receiving it; "
                                     f"the order may exist: {e}") from e
        except (asyncio.TimeoutError, asyncio.CancelledError):
            if self._pending.pop(rid, None) is not None and self._dead is None:
                self._send_nowait({"id": next(self._ids), "command": "cancel", "target": rid})
            raise
        except (BrokenPipeError, ConnectionResetError, RuntimeError) as e:
            self._pending.pop(rid, None)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.exited.wait(), self._grace + 1)
            raise self._dead or WorkerUnavailable(f"write to worker (pid {self.pid}): {e}") from e
        finally:
            if timer is not None:
                timer.cancel()
            self._pending.pop(rid, None)

    def _send_nowait(self, obj: Mapping[str, Any]) -> None:
        with contextlib.suppress(Exception):
            self._stdin.write((json.dumps(obj, separators=(",", ":")) + "\n").encode())

    async def _read_stdout(self) -> None:
        reader = self._stdout
        while True:
            try:
                line = await reader.readline()
            except (ValueError, asyncio.LimitOverrunError) as e:
                log.error("line from worker %d too long: %s", self.pid, e)
                break
            if not line:
                break
            if not line.strip():
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                log.warning("ignoring non-JSON line from worker %d: %.200r", self.pid, line)
                continue
            if not isinstance(msg, dict):
                continue
            if "event" in msg:
                try:
                    self._on_event(msg)
                except Exception:  # noqa: BLE001 - a subscriber's bug must not kill the reader
                    log.exception("event handler failed")
                continue
            fut = self._pending.get(msg.get("id"))  # type: ignore[arg-type]
            if fut is None or fut.done():
                continue  # the answer to a canceled or abandoned request
            if msg.get("status") == "success":
                fut.set_result(msg.get("data"))
            else:
                fut.set_exception(BrokerError.from_response(msg))
        # stdout ended: the worker is exiting or dead. Reap it and fail everything at once.
        try:
            rc = await asyncio.wait_for(self.proc.wait(), self._grace)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            rc = await self.proc.wait()
        self._mark_dead(rc)

    def _mark_dead(self, rc: int) -> None:
        self.returncode = rc
        how = f"killed by signal {signal.Signals(-rc).name}" if rc < 0 else f"exit status {rc}"
        tail = "; stderr: " + " | ".join(self._stderr_tail) if self._stderr_tail and rc != 0 else ""
        self._dead = WorkerExited(f"worker (pid {self.pid}) exited: {how}{tail}", rc)
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(self._dead)
                fut.exception()  # retrieved: no "never retrieved" warning for abandoned ones
        self._pending.clear()
        self.exited.set()

    async def _read_stderr(self) -> None:
        wlog = log.getChild("worker")
        async for raw in self._stderr:
            text = raw.decode(errors="replace").rstrip("\n")
            try:
                rec = json.loads(text)
                level = logging.getLevelName(str(rec.get("@level", "info")).upper())
                message = str(rec.get("@message", ""))
                wlog.log(level if isinstance(level, int) else logging.INFO, "%s %s", message,
                         {k: v for k, v in rec.items() if not k.startswith("@")})
                if rec.get("@level") in ("error", "warn"):
                    self._stderr_tail.append(message)
            except (ValueError, AttributeError):
                wlog.info("%s", text)
                self._stderr_tail.append(text)

    async def kill(self) -> None:
        """SIGKILL (a stopped process dies too) and reap; idempotent."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGKILL)
        await self._finish()

    async def close(self, disconnect: bool = True) -> Optional[int]:
        """Disconnects, closes the worker's stdin, waits the grace period, then kills; returns the exit status."""
        if self._dead is None and disconnect:
            with contextlib.suppress(BaseException):
                await self.request("disconnect", None, self._grace)
        with contextlib.suppress(Exception):
            self._stdin.close()
        try:
            await asyncio.wait_for(self.exited.wait(), self._grace)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGKILL)
        await self._finish()
        return self.returncode

    async def _finish(self) -> None:
        await self.proc.wait()
        for t in self._tasks:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(t, self._grace + 1)
        if self._dead is None:  # the reader ended without seeing EOF (cancelled)
            self._mark_dead(self.proc.returncode if self.proc.returncode is not None else -9)
        elif self.returncode is None:
            self.returncode = self.proc.returncode


def _expire(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_exception(asyncio.TimeoutError())

"""The supervised asyncio client: a worker process that is restarted when it dies or freezes, a session that is
re-established with the last connect parameters, retries of idempotent calls only, and events as an async
iterator."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import enum
import logging
import os
import random
import shutil
import time
from decimal import Decimal
from typing import Any, AsyncIterator, Iterable, Mapping, Optional, Sequence, Union

from .breaker import CircuitBreaker
from .errors import (BrokerError, ProtocolError, Closed, ClientIDInUse, NotConnected, WorkerExited, WorkerNotFound,
                     WorkerUnavailable)
from ._worker import Worker
from .quotes import QuoteStream
from .types import (AccountSummary, AccountUpdate, Bar, ConnectInfo, Contract, ContractDetails, Event, Execution,
                    Order, OrderEvent, PlacedOrder, Position, Quote, QuoteUpdate)

log = logging.getLogger("brokerkit")

#: Commands that may be repeated without changing their effect: the table of broker/ops.go. Anything else
#: (orders: :data:`ORDER_COMMANDS`) is attempted once.
IDEMPOTENT_COMMANDS = frozenset({"connect", "disconnect", "get_accounts", "get_positions", "get_account_summary",
                                 "ping", "hello", "get_account_updates", "get_executions", "get_open_orders",
                                 "get_completed_orders", "get_contract_details", "get_snapshot",
                                 "get_historical_bars", "set_market_data_type"})


#: The order commands: attempted once; once written, a lost answer is OutcomeUnknown (PROTOCOL.md, "Orders").
ORDER_COMMANDS = frozenset({"place_order", "modify_order", "cancel_order"})

#: The capacity of an order event stream (broker.OrderEventBuffer).
ORDER_EVENT_BUFFER = 1024


class State(str, enum.Enum):
    """The connection state of a Client, as Go's robust.State names it."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"

    def __str__(self) -> str:
        return self.value


def find_binary(binary: Optional[str] = None) -> str:
    """The brokerkit binary: ``binary``, else $BROKERKIT, else ``brokerkit`` on $PATH. Raises WorkerNotFound."""
    for cand in (binary, os.environ.get("BROKERKIT")):
        if cand:
            return cand
    found = shutil.which("brokerkit")
    if found:
        return found
    raise WorkerNotFound("the brokerkit binary was not found: build it with `make build` (bin/brokerkit), "
                         "put `brokerkit` on $PATH, set $BROKERKIT, or pass binary=...")


def next_client_id(requested: int, conflicts: int, policy: str, span: int) -> int:
    """The client id of a connect attempt after ``conflicts`` refusals (IB 326): robust.SameClientID or
    robust.NextClientID(span)."""
    if policy == "same":
        return requested
    span = max(span, 1)
    cid = requested + conflicts % span
    return cid - span if cid > 2147483647 else cid


class Client:
    """A brokerkit worker behind a supervisor. Safe for concurrent use by many tasks of one event loop.

    The worker is ``[binary, "worker", "--robust", ...]`` by default, so gateway drops, IB 1100/1101/1102 and
    client-id conflicts are handled inside it (PROTOCOL.md, "A robust worker"). This client handles what a worker
    cannot: when the worker process exits or stops answering (``health_interval``/``health_timeout``), it is
    killed (SIGKILL), a new one is started, and the session is re-established with the last connect parameters
    and the same client-id policy. Calls in flight on the dead worker fail with WorkerExited; idempotent calls
    (:data:`IDEMPOTENT_COMMANDS`) are then retried on the new worker, up to ``max_attempts`` in all, within
    their timeout. A circuit breaker (``breaker_threshold``, ``breaker_cooldown``) sheds calls after repeated
    failures.
    """

    def __init__(self, binary: Optional[str] = None, *, robust_worker: bool = True,
                 client_id_policy: str = "same", client_id_span: int = 8, worker_args: Sequence[str] = (),
                 env: Optional[Mapping[str, str]] = None, call_timeout: float = 30.0, start_timeout: float = 10.0,
                 max_attempts: int = 5, backoff_base: float = 0.05, backoff_max: float = 2.0,
                 health_interval: float = 1.0, health_timeout: float = 3.0, breaker_threshold: int = 10,
                 breaker_cooldown: float = 5.0, grace: float = 2.0) -> None:
        if client_id_policy not in ("same", "next"):
            raise ValueError(f"client_id_policy {client_id_policy!r}: want 'same' or 'next'")
        self.binary = binary
        self.robust_worker = robust_worker
        self.client_id_policy = client_id_policy
        self.client_id_span = max(client_id_span, 1)
        self.worker_args = list(worker_args)
        self.env = env
        self.call_timeout = call_timeout
        self.start_timeout = start_timeout
        self.max_attempts = max(max_attempts, 1)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.health_interval = health_interval
        self.health_timeout = health_timeout
        self.grace = grace
        self.breaker = CircuitBreaker(breaker_threshold, breaker_cooldown)
        self.restarts = 0
        self.reconnects = 0
        self.last_error: Optional[BaseException] = None
        self._state = State.DISCONNECTED
        self._worker: Optional[Worker] = None
        self._params: Optional[dict] = None  # the last successful connect's parameters, while wanted
        self._ready = asyncio.Event()  # a live worker, and a session if one is wanted
        self._changed = asyncio.Event()
        self._closed = False
        self._subs: list[asyncio.Queue] = []
        self._streams: dict = {}  # live subscriptions of the worker, by name
        self._stream_seq = 0
        self._supervisor: Optional[asyncio.Task] = None
        self._health: Optional[asyncio.Task] = None
        self._recovery: Optional[asyncio.Task] = None
        self._lock = asyncio.Lock()  # serializes connect, disconnect and recovery

    # ---- lifecycle ----

    async def __aenter__(self) -> "Client":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def argv(self) -> list:
        """The worker's command line."""
        args = [find_binary(self.binary), "worker"]
        if self.robust_worker:
            args += ["--robust", "--client-id-policy", self.client_id_policy,
                     "--client-id-span", str(self.client_id_span)]
        return args + self.worker_args

    async def start(self) -> None:
        """Starts the worker (raises WorkerNotFound, WorkerExited, ProtocolError) and its supervisor."""
        if self._closed:
            raise Closed("client is closed")
        if self._worker is not None:
            return
        self._worker = await self._spawn()
        self._ready.set()
        self._supervisor = asyncio.ensure_future(self._supervise())
        if self.health_interval > 0:
            self._health = asyncio.ensure_future(self._check_health())

    async def _spawn(self) -> Worker:
        w = await Worker.start(self.argv(), env=self.env, timeout=self.start_timeout, grace=self.grace,
                               on_event=self._on_worker_event)
        self._publish(Event("worker_started", _now(), f"worker started (pid {w.pid})", pid=w.pid))
        return w

    async def close(self) -> Optional[int]:
        """Disconnects, stops the worker (grace period, then SIGKILL) and every task; returns the worker's exit
        status. Idempotent; later calls raise Closed."""
        if self._closed:
            return self._worker.returncode if self._worker else None
        self._closed = True
        self._params = None
        for t in (self._supervisor, self._health, self._recovery):
            if t is not None:
                t.cancel()
                with contextlib.suppress(BaseException):
                    await t
        rc = None
        if self._worker is not None:
            rc = await self._worker.close()
        self._set_state(State.CLOSED)
        self._ready.set()  # wake waiters: they see _closed
        for q in self._subs:
            with contextlib.suppress(asyncio.QueueFull):
                q.put_nowait(None)
        self._end_streams()
        return rc

    def _end_streams(self) -> None:
        """Ends every stream's iterator: the worker that served them is gone."""
        streams, self._streams = self._streams, {}
        for q in streams.values():
            if isinstance(q, _OrderQueue):
                q.end()
            elif isinstance(q, QuoteStream):
                q._end()
            else:
                _put_latest(q, None)

    # ---- observability ----

    @property
    def state(self) -> State:
        return self._state

    @property
    def pid(self) -> Optional[int]:
        """The pid of the current worker process."""
        return self._worker.pid if self._worker else None

    @property
    def connected(self) -> bool:
        return self._state is State.CONNECTED

    @property
    def session_wanted(self) -> bool:
        """True from a successful connect until disconnect: the client keeps (re-establishing) the session."""
        return self._params is not None

    def events(self) -> AsyncIterator[Event]:
        """Returns an async iterator of every event from this call on (best effort: a consumer more than 1024
        events behind loses the newest), which ends when the client is closed."""
        q: asyncio.Queue = asyncio.Queue(maxsize=1024)
        self._subs.append(q)
        if self._closed:
            q.put_nowait(None)
        return self._drain(q)

    async def _drain(self, q: asyncio.Queue) -> AsyncIterator[Event]:
        try:
            while True:
                ev = await q.get()
                if ev is None:
                    return
                yield ev
        finally:
            with contextlib.suppress(ValueError):
                self._subs.remove(q)

    def _publish(self, ev: Event) -> None:
        for q in self._subs:
            with contextlib.suppress(asyncio.QueueFull):
                q.put_nowait(ev)

    def _set_state(self, st: State, why: str = "") -> None:
        if st is self._state:
            return
        self._state = st
        self._publish(Event("state", _now(), why or str(st), state=str(st)))

    def _on_worker_event(self, msg: Mapping[str, Any]) -> None:
        sub = msg.get("subscription")
        if isinstance(sub, str):
            q = self._streams.get(sub)
            if isinstance(q, _OrderQueue):
                if msg.get("event") == "subscription_end":
                    self._streams.pop(sub, None)
                    q.end()
                elif msg.get("event") == "order":
                    try:
                        q.put(OrderEvent.from_wire(msg.get("update") or {}))
                    except ProtocolError as e:
                        q.lose(f"a malformed order event was dropped: {e}")
            elif isinstance(q, QuoteStream):
                if msg.get("event") == "subscription_end":
                    self._streams.pop(sub, None)
                    q._end()
                elif msg.get("event") == "quote":
                    try:
                        q._offer(QuoteUpdate.from_wire(msg))
                    except ProtocolError:
                        log.warning("ignoring malformed quote of %s", sub)
            elif q is not None:
                if msg.get("event") == "subscription_end":
                    self._streams.pop(sub, None)
                    _put_latest(q, None)
                elif msg.get("event") == "account_update":
                    try:
                        _put_latest(q, AccountUpdate.from_wire(msg.get("update") or {}))
                    except ProtocolError:
                        log.warning("ignoring malformed account update of %s", sub)
            return
        ev = Event.from_wire(msg)
        if self._params is not None and not self._closed:
            if ev.kind == "connection_lost":
                self._set_state(State.RECONNECTING, ev.message)
                if ev.ib_code == 0 and not self.robust_worker:
                    self._session_lost()
            elif ev.kind == "connection_restored":
                if ev.ib_code == 0:
                    self.reconnects += 1
                self._set_state(State.CONNECTED, ev.message)
        self._publish(ev)

    # ---- the calls ----

    async def connect(self, host: str = "127.0.0.1", port: int = 4002, client_id: int = 0, readonly: bool = False,
                      timeout: float = 10.0) -> ConnectInfo:
        """Opens the session and remembers its parameters for every reconnection."""
        params = {"host": host, "port": port, "client_id": client_id, "readonly": readonly, "timeout": timeout}
        async with self._lock:
            wanted = self._params is not None  # a session is open or being restored: the worker refuses
            if not wanted:
                self._set_state(State.CONNECTING)
            try:
                data = await self._call("connect", params, timeout + 5 + self.start_timeout)
            except BaseException:
                if not wanted and self._state is State.CONNECTING:
                    self._set_state(State.DISCONNECTED)
                raise
            self._params = params
            self._set_state(State.CONNECTED)
        return ConnectInfo(accounts=list(data.get("accounts") or []), server_version=int(data.get("server_version") or 0))

    async def disconnect(self, timeout: Optional[float] = None) -> None:
        """Ends the session; nothing reconnects afterwards. Idempotent."""
        async with self._lock:
            self._params = None
            try:
                await self._call("disconnect", {}, timeout)
            finally:
                if not self._closed:
                    self._set_state(State.DISCONNECTED)

    async def accounts(self, timeout: Optional[float] = None) -> list:
        """The managed accounts."""
        return list((await self._call("get_accounts", {}, timeout))["accounts"])

    async def positions(self, timeout: Optional[float] = None) -> list:
        """Every position of every managed account, as :class:`Position` values with Decimal numbers."""
        return [Position.from_wire(p) for p in (await self._call("get_positions", {}, timeout))["positions"]]

    async def account_summary(self, tags: Optional[Iterable[str]] = None,
                              timeout: Optional[float] = None) -> list:
        """One :class:`AccountSummary` per account; decimal amounts are Decimals, words stay strings."""
        params = {"tags": list(tags)} if tags else {}
        return [AccountSummary.from_wire(s)
                for s in (await self._call("get_account_summary", params, timeout))["summaries"]]

    async def account_updates(self, account: str = "", timeout: Optional[float] = None) -> AccountUpdate:
        """The values and portfolio (market price and value, PnL: Decimals) of one managed account;
        ``""`` names the only one. An account the session does not manage raises :class:`InvalidArgument`."""
        params = {"account": account} if account else {}
        return AccountUpdate.from_wire((await self._call("get_account_updates", params, timeout))["update"])

    async def executions(self, timeout: Optional[float] = None, **flt: Any) -> list:
        """Today's executions matching the filter (``client_id``, ``account``, ``since``, ``symbol``,
        ``sec_type``, ``exchange``, ``side``), each with its commission, as :class:`Execution` values."""
        params = {"filter": flt} if flt else {}
        return [Execution.from_wire(x) for x in (await self._call("get_executions", params, timeout))["executions"]]

    async def open_orders(self, timeout: Optional[float] = None) -> list:
        """The open orders of this client id, as :class:`Order` values (read only)."""
        return [Order.from_wire(o) for o in (await self._call("get_open_orders", {}, timeout))["orders"]]

    async def completed_orders(self, timeout: Optional[float] = None) -> list:
        """The completed orders the gateway reports, as :class:`Order` values."""
        return [Order.from_wire(o) for o in (await self._call("get_completed_orders", {}, timeout))["orders"]]

    async def account_updates_stream(self, account: str = "",
                                     timeout: Optional[float] = None) -> AsyncIterator[AccountUpdate]:
        """Subscribes to one account (``subscribe_account_updates``) and returns an async iterator of its whole
        state: once the gateway has sent its first download, then after every change. A slow consumer sees the
        newest state. The iterator ends when the worker ends the stream (session ended, worker restarted) or the
        client closes; closing the iterator unsubscribes."""
        q: asyncio.Queue = asyncio.Queue(maxsize=1)
        params = {"account": account} if account else {}
        name = await self._open_stream(q, "subscribe_account_updates", params, timeout)
        return self._stream(name, q)

    def subscribe_quotes(self, contract: "ContractArg", timeout: Optional[float] = None) -> QuoteStream:
        """A stream of one contract's quotes (``subscribe_quotes``), as :class:`QuoteUpdate` values with exact
        Decimals: ``async with client.subscribe_quotes("AAPL") as quotes: async for u in quotes: ...``, or
        ``quotes = await client.subscribe_quotes(...)`` and ``await quotes.aclose()``. Subscribing fails as
        :meth:`snapshot` does (:class:`NotFound`, :class:`NotSubscribed`, :class:`Pacing`, :class:`NotConnected`).
        A consumer that does not keep up gets the newest quote with ``dropped`` counting what it missed."""
        return QuoteStream(self, _contract(contract), timeout)

    async def _open_stream(self, sink: Any, command: str, params: Mapping[str, Any],
                           timeout: Optional[float]) -> str:
        """Registers sink (a queue of size 1, an order queue or a QuoteStream) under a new subscription name and
        subscribes it with command; returns the name."""
        self._stream_seq += 1
        name = f"py{self._stream_seq}"
        self._streams[name] = sink
        try:
            await self._call(command, {"subscription": name, **params}, timeout)
        except BaseException:
            self._streams.pop(name, None)
            raise
        return name

    async def _unsubscribe(self, name: str) -> None:
        """Ends stream name here and, if it was live, in the worker."""
        if self._streams.pop(name, None) is not None and not self._closed:
            with contextlib.suppress(BrokerError):
                await self._call("unsubscribe", {"subscription": name}, 5.0)

    async def _stream(self, name: str, q: asyncio.Queue) -> AsyncIterator[Any]:
        try:
            while True:
                u = await q.get()
                if u is None:
                    return
                yield u
        finally:
            await self._unsubscribe(name)

    # ---- orders (PROTOCOL.md, "Orders"): never retried ----

    async def place_order(self, key: str, contract: "ContractArg", action: str, quantity: Union[Decimal, str, int],
                          order_type: str = "MKT", *, limit_price: Union[Decimal, str, None] = None,
                          aux_price: Union[Decimal, str, None] = None, tif: str = "DAY", account: str = "",
                          outside_rth: bool = False, hold: bool = False,
                          timeout: Optional[float] = None) -> PlacedOrder:
        """Places one order under the idempotency ``key`` (its orderRef) and returns once the gateway
        acknowledged it. A key the session already knows returns that order with ``existing`` True.

        Raises ReadOnly (read-only session or gateway: nothing placed), Rejected (IB 201, 110, ...),
        InvalidArgument (malformed: nothing sent), NotConnected, and OutcomeUnknown when the order reached the
        worker and the answer was lost (the worker died, ``timeout`` passed): the order may exist; look ``key``
        up before placing it again. Never retried."""
        params = {"order": _order(key, contract, action, quantity, order_type, limit_price, aux_price, tif, account,
                                  outside_rth, hold)}
        return PlacedOrder.from_wire(await self._call("place_order", params, timeout))

    async def modify_order(self, order_id: int, key: str, contract: "ContractArg", action: str,
                           quantity: Union[Decimal, str, int], order_type: str = "MKT", *,
                           limit_price: Union[Decimal, str, None] = None, aux_price: Union[Decimal, str, None] = None,
                           tif: str = "DAY", account: str = "", outside_rth: bool = False, hold: bool = False,
                           timeout: Optional[float] = None) -> PlacedOrder:
        """Sends new terms for the working order ``order_id`` (same key). Raises like place_order, and NotFound
        when no working order of this client has that id."""
        params = {"order_id": int(order_id),
                  "order": _order(key, contract, action, quantity, order_type, limit_price, aux_price, tif, account,
                                  outside_rth, hold)}
        return PlacedOrder.from_wire(await self._call("modify_order", params, timeout))

    async def cancel_order(self, order_id: int, timeout: Optional[float] = None) -> None:
        """Cancels the order ``order_id``; returns once the gateway reported it cancelled (or already final).
        Raises NotFound (IB 10147), ReadOnly, OutcomeUnknown (sent, answer lost)."""
        await self._call("cancel_order", {"order_id": int(order_id)}, timeout)

    async def orders(self, timeout: Optional[float] = None) -> AsyncIterator[OrderEvent]:
        """Subscribes to this client's order events (``subscribe_orders``) and returns an async iterator of
        :class:`OrderEvent`: status changes and fills, in order, queued (never conflated) up to 1024; a consumer
        that falls further behind loses events and then receives one "gap" event saying how many. The iterator
        ends when the worker ends the stream (session ended, worker restarted) or the client closes; after a gap
        or such an end, re-read open_orders, completed_orders and executions. Closing it unsubscribes."""
        q = _OrderQueue(ORDER_EVENT_BUFFER)
        name = await self._open_stream(q, "subscribe_orders", {}, timeout)
        return self._stream(name, q.queue)

    async def ping(self, timeout: Optional[float] = None) -> float:
        """One round trip to the gateway; returns its duration in seconds."""
        t0 = time.perf_counter()
        await self._call("ping", {}, timeout)
        return time.perf_counter() - t0

    async def contract_details(self, contract: "ContractArg", timeout: Optional[float] = None) -> list:
        """Every instrument ``contract`` matches, as :class:`ContractDetails` (a con id alone is an exact lookup,
        a symbol alone a search). Raises :class:`NotFound` when nothing matches."""
        data = await self._call("get_contract_details", {"contract": _contract(contract)}, timeout)
        return [ContractDetails.from_wire(d) for d in data["contracts"]]

    async def snapshot(self, contract: "ContractArg", timeout: Optional[float] = None) -> Quote:
        """One :class:`Quote` of ``contract``'s top of book, with Decimal prices and sizes. Raises
        :class:`NotSubscribed` without a market data subscription (try ``set_market_data_type("delayed")``)."""
        return Quote.from_wire((await self._call("get_snapshot", {"contract": _contract(contract)}, timeout))["quote"])

    async def historical_bars(self, contract: "ContractArg", duration: str, bar_size: str, *,
                              what_to_show: str = "TRADES", use_rth: bool = False,
                              end: Optional[_dt.datetime] = None, timeout: Optional[float] = None) -> list:
        """The :class:`Bar` values over the window (IB's terms: ``duration="1 D"``, ``bar_size="5 mins"``),
        oldest first; ``end`` (timezone-aware) defaults to now."""
        bars: dict = {"duration": duration, "bar_size": bar_size, "what_to_show": what_to_show, "use_rth": use_rth}
        if end is not None:
            if end.tzinfo is None:
                raise ValueError("historical_bars: end must be timezone-aware")
            bars["end"] = end.astimezone(_dt.timezone.utc).isoformat().replace("+00:00", "Z")
        data = await self._call("get_historical_bars", {"contract": _contract(contract), "bars": bars}, timeout)
        return [Bar.from_wire(b) for b in data["bars"]]

    async def set_market_data_type(self, market_data_type: str, timeout: Optional[float] = None) -> None:
        """``live``, ``frozen``, ``delayed`` or ``delayed-frozen`` for the session's later snapshots."""
        await self._call("set_market_data_type", {"market_data_type": market_data_type}, timeout)

    async def request(self, command: str, timeout: Optional[float] = None, **params: Any) -> Any:
        """Any command of the protocol; returns its raw data. Retried only if the command is idempotent."""
        return await self._call(command, params, timeout)

    def _retryable(self, e: BrokerError) -> bool:
        if isinstance(e, WorkerNotFound) or self._closed:
            return False
        if isinstance(e, WorkerUnavailable):
            return True  # the worker died: the next attempt goes to a new one
        if e.code == "not_connected":
            return self._params is not None  # a session is wanted and being restored
        # A robust worker already retried what the gateway refused; do not multiply its attempts.
        return e.retryable and not self.robust_worker

    async def _call(self, command: str, params: Mapping[str, Any], timeout: Optional[float]) -> Any:
        if self._closed:
            raise Closed("client is closed")
        if self._worker is None:
            await self.start()
        loop = asyncio.get_running_loop()
        budget = self.call_timeout if timeout is None else timeout
        deadline = loop.time() + budget
        attempts = self.max_attempts if command in IDEMPOTENT_COMMANDS else 1
        conflicts = 0
        last: Optional[BrokerError] = None
        for attempt in range(1, attempts + 1):
            w = await self._live_worker(deadline, command, last)
            self.breaker.allow()
            args = dict(params)
            if command == "connect" and conflicts and not self.robust_worker:
                args["client_id"] = next_client_id(int(params["client_id"]), conflicts, self.client_id_policy,
                                                   self.client_id_span)
            try:
                data = await w.request(command, args, max(deadline - loop.time(), 0.001), order=command in ORDER_COMMANDS)
            except BrokerError as e:
                self.last_error = e
                if e.retryable or isinstance(e, WorkerUnavailable):
                    self.breaker.failure()
                if isinstance(e, ClientIDInUse):
                    conflicts += 1
                if isinstance(e, NotConnected) and not self.robust_worker and command != "connect":
                    self._session_lost()
                if attempt == attempts or not self._retryable(e):
                    raise
                last = e
                log.debug("%s failed (%s); attempt %d of %d", command, e, attempt, attempts)
            except asyncio.TimeoutError:
                self.breaker.failure()
                self._probe_soon()
                raise
            else:
                self.breaker.success()
                return data
            if not isinstance(last, WorkerUnavailable):
                bound = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
                await asyncio.sleep(min(random.uniform(0, bound), max(deadline - loop.time(), 0)))
        assert last is not None  # the loop returns or raises
        raise last

    async def _live_worker(self, deadline: float, command: str, last: Optional[BrokerError]) -> Worker:
        """The current worker once it is alive and, if a session is wanted, connected again."""
        loop = asyncio.get_running_loop()
        while True:
            if self._closed:
                raise Closed("client is closed")
            w = self._worker
            if self._ready.is_set() and w is not None and w.alive:
                return w
            remaining = deadline - loop.time()
            if remaining <= 0:
                if last is not None:
                    raise last
                why = f" (last error: {self.last_error})" if self.last_error is not None else ""
                raise WorkerUnavailable(f"{command}: no live worker within the call's timeout{why}")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._ready.wait(), remaining)

    # ---- supervision ----

    def _session_lost(self) -> None:
        """A plain worker lost its gateway session: re-establish it on the same worker (a robust worker does
        this by itself)."""
        if self._closed or self._params is None or not self._ready.is_set():
            return
        self._ready.clear()
        self._recovery = asyncio.ensure_future(self._restart())

    def _probe_soon(self) -> None:
        """A call timed out: wake the health check now."""
        self._changed.set()

    async def _check_health(self) -> None:
        """Kills a worker that does not answer hello within health_timeout (a frozen or stopped process)."""
        while not self._closed:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self.health_interval)
            self._changed.clear()
            w = self._worker
            if w is None or not w.alive:
                continue  # not started yet, or dead: the supervisor restarts it
            try:
                await w.request("hello", {"protocol": 1, "events": True}, self.health_timeout)
            except asyncio.TimeoutError:
                log.warning("worker %d did not answer within %.1fs; killing it", w.pid, self.health_timeout)
                self._publish(Event("worker_frozen", _now(), f"worker (pid {w.pid}) stopped answering", pid=w.pid))
                await w.kill()
            except BrokerError:
                pass  # dead already: the supervisor restarts it

    async def _supervise(self) -> None:
        """Restarts the worker whenever it exits, and re-establishes a wanted session on the new one."""
        while not self._closed:
            w = self._worker
            assert w is not None
            await w.exited.wait()
            if self._closed:
                return
            self._ready.clear()
            self._publish(Event("worker_exited", _now(), str(w._dead), pid=w.pid))
            log.warning("%s; restarting it", w._dead)
            if self._params is not None:
                self._set_state(State.RECONNECTING, str(w._dead))
            if self._recovery is not None and not self._recovery.done():
                self._recovery.cancel()  # a session recovery on the dead worker: superseded
                with contextlib.suppress(BaseException):
                    await self._recovery
            await self._restart()

    async def _restart(self) -> None:
        attempt = 0
        conflicts = 0
        while not self._closed:
            attempt += 1
            try:
                if self._worker is None or not self._worker.alive:
                    self._end_streams()
                    self._worker = await self._spawn()
                    self.restarts += 1
                params = self._params
                if params is not None:
                    if not self.robust_worker:  # make sure the worker forgets a lost session
                        await self._worker.request("disconnect", None, self.grace)
                    args = dict(params)
                    args["client_id"] = next_client_id(int(params["client_id"]), conflicts, self.client_id_policy,
                                                       self.client_id_span)
                    # Bounded like a robust worker's own connect (attempts of max(10 s, timeout) plus
                    # backoff); a worker that freezes meanwhile is killed by the health check.
                    bound = (max(float(params["timeout"]), 10.0) + 2) * self.max_attempts + 10
                    await self._worker.request("connect", args, bound)
                    self.reconnects += 1
                    self._set_state(State.CONNECTED, "session restored on a new worker")
                self._ready.set()
                return
            except WorkerNotFound as e:
                log.error("cannot restart the worker: %s", e)
                self.last_error = e
            except (BrokerError, asyncio.TimeoutError) as e:
                self.last_error = e
                if isinstance(e, ClientIDInUse):
                    conflicts += 1
                log.warning("restart attempt %d failed: %s", attempt, e)
            bound = min(self.backoff_max, self.backoff_base * 2 ** min(attempt - 1, 30))
            await asyncio.sleep(random.uniform(bound / 2, bound))


#: A contract argument: a :class:`Contract`, a mapping in the wire shape, or a symbol (a US stock on SMART).
ContractArg = Union[Contract, Mapping[str, Any], str]


def _contract(c: ContractArg) -> dict:
    if isinstance(c, Contract):
        return c.to_wire()
    if isinstance(c, str):
        return {"symbol": c, "sec_type": "STK", "exchange": "SMART", "currency": "USD"}
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in c.items()}


def _order(key: str, contract: ContractArg, action: str, quantity: Union[Decimal, str, int], order_type: str,
           limit_price: Union[Decimal, str, None], aux_price: Union[Decimal, str, None], tif: str, account: str,
           outside_rth: bool, hold: bool) -> dict:
    """The OrderRequest wire shape; decimals as exact text (a float would not be exact, so it is refused)."""
    def text(v: Union[Decimal, str, int], what: str) -> str:
        if isinstance(v, float):
            raise TypeError(f"{what} must be a Decimal, str or int, not float (floats are not exact)")
        return str(Decimal(v))

    o: dict = {"key": key, "contract": _contract(contract), "action": action.upper(),
               "quantity": text(quantity, "quantity"), "order_type": order_type.upper(), "tif": tif.upper()}
    if limit_price is not None:
        o["limit_price"] = text(limit_price, "limit_price")
    if aux_price is not None:
        o["aux_price"] = text(aux_price, "aux_price")
    if account:
        o["account"] = account
    if outside_rth:
        o["outside_rth"] = True
    if hold:
        o["hold"] = True
    return o


class _OrderQueue:
    """An order event stream's queue (broker.OrderQueue's rules): events in order up to ``size``; when full,
    events are dropped and counted, and the first put with room for two queues a gap event first."""

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=size + 1)  # + the end marker
        self.size = size
        self.lost = 0
        self.why = ""

    def put(self, ev: OrderEvent) -> None:
        free = self.size - self.queue.qsize()
        if self.lost or self.why:
            if free < 2:
                self.lost += 1
                return
            self.queue.put_nowait(self._gap())
            free -= 1
        if free < 1:
            self.lost += 1
            return
        self.queue.put_nowait(ev)

    def lose(self, why: str) -> None:
        """An event was lost for another reason: a gap says so, at once if there is room."""
        self.why = f"{self.why}; {why}" if self.why else why
        if self.queue.qsize() < self.size:
            self.queue.put_nowait(self._gap())

    def _gap(self) -> OrderEvent:
        parts = [p for p in (self.why, f"{self.lost} order events dropped: the consumer did not keep up"
                             if self.lost else "") if p]
        self.lost, self.why = 0, ""
        return OrderEvent(kind="gap", gap="; ".join(parts))

    def end(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)


def _put_latest(q: asyncio.Queue, item: Any) -> None:
    """Puts item on a queue of size 1, replacing what the consumer has not taken (newest state wins)."""
    with contextlib.suppress(asyncio.QueueEmpty):
        q.get_nowait()
    q.put_nowait(item)


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)

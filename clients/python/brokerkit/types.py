"""The typed values of the protocol. Every decimal number is a :class:`decimal.Decimal`, never a float."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping, Optional, Union

from .errors import ProtocolError

#: Summary values are decimal amounts (a Decimal) or words such as ``INDIVIDUAL`` (kept as str).
SummaryNumber = Union[Decimal, str]


def to_decimal(text: Any, what: str) -> Decimal:
    """Parses the protocol's exact decimal text; raises ProtocolError on anything else (floats included)."""
    if not isinstance(text, str):
        raise ProtocolError(f"{what}: want a decimal string, got {type(text).__name__} {text!r}")
    try:
        d = Decimal(text)
    except InvalidOperation as e:
        raise ProtocolError(f"{what}: {text!r} is not a decimal") from e
    if not d.is_finite():
        raise ProtocolError(f"{what}: {text!r} is not a finite decimal")
    return d


def summary_number(text: str) -> SummaryNumber:
    """A summary value as a Decimal when it is a decimal amount, else the gateway's text unchanged."""
    try:
        d = Decimal(text)
    except (InvalidOperation, TypeError):
        return text
    return d if d.is_finite() else text


@dataclass(frozen=True)
class Contract:
    """The contract of a position."""

    con_id: int
    symbol: str
    sec_type: str
    expiry: str = ""
    strike: Decimal = Decimal(0)
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""

    @classmethod
    def from_wire(cls, c: Mapping[str, Any]) -> "Contract":
        return cls(con_id=int(c.get("con_id") or 0), symbol=str(c.get("symbol", "")),
                   sec_type=str(c.get("sec_type", "")), expiry=str(c.get("expiry", "")),
                   strike=to_decimal(c.get("strike", "0"), "contract.strike"), right=str(c.get("right", "")),
                   multiplier=str(c.get("multiplier", "")), exchange=str(c.get("exchange", "")),
                   currency=str(c.get("currency", "")), local_symbol=str(c.get("local_symbol", "")),
                   trading_class=str(c.get("trading_class", "")))


    def to_wire(self) -> dict:
        """The request shape of the contract; strike as exact decimal text."""
        return {"con_id": self.con_id, "symbol": self.symbol, "sec_type": self.sec_type, "expiry": self.expiry,
                "strike": str(self.strike), "right": self.right, "multiplier": self.multiplier,
                "exchange": self.exchange, "currency": self.currency, "local_symbol": self.local_symbol,
                "trading_class": self.trading_class}


def _time(text: Any, what: str) -> _dt.datetime:
    if not isinstance(text, str):
        raise ProtocolError(f"{what}: want an RFC 3339 time, got {text!r}")
    try:
        return _dt.datetime.fromisoformat(_trim_fraction(text.replace("Z", "+00:00")))
    except ValueError as e:
        raise ProtocolError(f"{what}: {text!r} is not an RFC 3339 time") from e


@dataclass(frozen=True)
class ContractDetails:
    """What the gateway knows about one instrument."""

    contract: Contract
    primary_exchange: str
    long_name: str
    min_tick: Decimal
    time_zone: str = ""
    trading_hours: str = ""
    liquid_hours: str = ""
    valid_exchanges: str = ""

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> "ContractDetails":
        try:
            return cls(contract=Contract.from_wire(d["contract"]), primary_exchange=str(d.get("primary_exchange", "")),
                       long_name=str(d.get("long_name", "")), min_tick=to_decimal(d.get("min_tick", "0"), "min_tick"),
                       time_zone=str(d.get("time_zone", "")), trading_hours=str(d.get("trading_hours", "")),
                       liquid_hours=str(d.get("liquid_hours", "")), valid_exchanges=str(d.get("valid_exchanges", "")))
        except (KeyError, TypeError, AttributeError) as e:
            raise ProtocolError(f"malformed contract details {d!r}: {e}") from e


@dataclass(frozen=True)
class Quote:
    """One snapshot of an instrument's top of book; prices and sizes are exact Decimals (0 when not sent).

    ``market_data_type`` is ``live``, ``frozen``, ``delayed`` or ``delayed-frozen``; ``last_time`` is None when
    the gateway sent no last trade time.
    """

    contract: Contract
    bid: Decimal
    ask: Decimal
    last: Decimal
    bid_size: Decimal
    ask_size: Decimal
    last_size: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    halted: bool
    market_data_type: str
    time: _dt.datetime
    last_time: Optional[_dt.datetime] = None

    @classmethod
    def from_wire(cls, q: Mapping[str, Any]) -> "Quote":
        try:
            nums = {k: to_decimal(q.get(k, "0"), k) for k in ("bid", "ask", "last", "bid_size", "ask_size",
                                                               "last_size", "open", "high", "low", "close", "volume")}
            last = q.get("last_time")
            return cls(contract=Contract.from_wire(q["contract"]), halted=bool(q.get("halted", False)),
                       market_data_type=str(q.get("market_data_type", "")), time=_time(q.get("time"), "time"),
                       last_time=_time(last, "last_time") if last is not None else None, **nums)
        except (KeyError, TypeError, AttributeError) as e:
            raise ProtocolError(f"malformed quote {q!r}: {e}") from e


@dataclass(frozen=True)
class QuoteUpdate:
    """One value of a quote stream (``subscribe_quotes``): the instrument's newest top of book; ``gap``, when not
    empty, why the stream was interrupted (values before it are stale; a gap marker alone has a quote that is zero
    but for its contract, with ``market_data_type`` ""); ``dropped``, how many changes were conflated away before
    this one, by the worker and by this client together."""

    quote: Quote
    gap: str = ""
    dropped: int = 0

    @classmethod
    def from_wire(cls, msg: Mapping[str, Any]) -> "QuoteUpdate":
        gap, dropped = msg.get("gap", ""), msg.get("dropped", 0)
        if not isinstance(gap, str) or not isinstance(dropped, int) or isinstance(dropped, bool) or dropped < 0:
            raise ProtocolError(f"malformed quote event: gap {gap!r}, dropped {dropped!r}")
        q = msg.get("quote")
        if not isinstance(q, Mapping):
            raise ProtocolError(f"quote event without a quote: {q!r}")
        return cls(Quote.from_wire(q), gap, dropped)

    def after(self, older: "QuoteUpdate") -> "QuoteUpdate":
        """This update replacing ``older``, which the consumer did not take: ``older`` and what it had dropped
        are counted, and its gap is kept if this one has none (a gap is never conflated away)."""
        return QuoteUpdate(self.quote, self.gap or older.gap, self.dropped + older.dropped + 1)


@dataclass(frozen=True)
class Bar:
    """One historical bar; ``time`` is its start."""

    time: _dt.datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    wap: Decimal
    count: int

    @classmethod
    def from_wire(cls, b: Mapping[str, Any]) -> "Bar":
        try:
            nums = {k: to_decimal(b.get(k, "0"), k) for k in ("open", "high", "low", "close", "volume", "wap")}
            return cls(time=_time(b.get("time"), "time"), count=int(b.get("count") or 0), **nums)
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise ProtocolError(f"malformed bar {b!r}: {e}") from e


@dataclass(frozen=True)
class Position:
    """One position of one account."""

    account: str
    contract: Contract
    quantity: Decimal
    avg_cost: Decimal

    @classmethod
    def from_wire(cls, p: Mapping[str, Any]) -> "Position":
        try:
            return cls(account=str(p["account"]), contract=Contract.from_wire(p["contract"]),
                       quantity=to_decimal(p["quantity"], "quantity"), avg_cost=to_decimal(p["avg_cost"], "avg_cost"))
        except (KeyError, TypeError, AttributeError) as e:
            raise ProtocolError(f"malformed position {p!r}: {e}") from e

    def to_dict(self) -> dict:
        """The wire shape (the plan's dict), with Decimals for quantity, avg_cost and contract.strike."""
        c = self.contract
        return {"account": self.account,
                "contract": {"con_id": c.con_id, "symbol": c.symbol, "sec_type": c.sec_type, "expiry": c.expiry,
                             "strike": c.strike, "right": c.right, "multiplier": c.multiplier,
                             "exchange": c.exchange, "currency": c.currency, "local_symbol": c.local_symbol,
                             "trading_class": c.trading_class},
                "quantity": self.quantity, "avg_cost": self.avg_cost}


@dataclass(frozen=True)
class SummaryValue:
    """One tag of an account summary: a Decimal amount (or a word) and its currency ("" if none)."""

    value: SummaryNumber
    currency: str = ""


@dataclass(frozen=True)
class AccountSummary:
    """The summary values of one account, by tag."""

    account: str
    values: Mapping[str, SummaryValue] = field(default_factory=dict)

    @classmethod
    def from_wire(cls, s: Mapping[str, Any]) -> "AccountSummary":
        try:
            return cls(account=str(s["account"]),
                       values={str(tag): SummaryValue(summary_number(str(v.get("value", ""))), str(v.get("currency", "")))
                               for tag, v in (s.get("values") or {}).items()})
        except (KeyError, TypeError, AttributeError) as e:
            raise ProtocolError(f"malformed account summary {s!r}: {e}") from e


def _decimals(d: Mapping[str, Any], names: tuple) -> dict:
    return {n: to_decimal(d[n], n) for n in names}


@dataclass(frozen=True)
class AccountValue:
    """One account value of :meth:`Client.account_updates`: the gateway's text (a key may repeat per currency)."""

    key: str
    value: str
    currency: str = ""


@dataclass(frozen=True)
class PortfolioItem:
    """One position with its market side; every number is a Decimal."""

    account: str
    contract: Contract
    position: Decimal
    market_price: Decimal
    market_value: Decimal
    avg_cost: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal

    @classmethod
    def from_wire(cls, p: Mapping[str, Any]) -> "PortfolioItem":
        try:
            return cls(account=str(p["account"]), contract=Contract.from_wire(p["contract"]),
                       **_decimals(p, ("position", "market_price", "market_value", "avg_cost", "unrealized_pnl",
                                       "realized_pnl")))
        except (KeyError, TypeError, AttributeError) as e:
            raise ProtocolError(f"malformed portfolio item {p!r}: {e}") from e


@dataclass(frozen=True)
class AccountUpdate:
    """The values and portfolio of one account and the gateway's update time ("HH:MM")."""

    account: str
    values: list
    portfolio: list
    update_time: str = ""

    @classmethod
    def from_wire(cls, u: Mapping[str, Any]) -> "AccountUpdate":
        try:
            return cls(account=str(u["account"]),
                       values=[AccountValue(str(v["key"]), str(v["value"]), str(v.get("currency", "")))
                               for v in u.get("values") or []],
                       portfolio=[PortfolioItem.from_wire(p) for p in u.get("portfolio") or []],
                       update_time=str(u.get("update_time", "")))
        except (KeyError, TypeError, AttributeError) as e:
            raise ProtocolError(f"malformed account update {u!r}: {e}") from e


@dataclass(frozen=True)
class Execution:
    """One fill with its commission report; every number is a Decimal."""

    exec_id: str
    order_id: int
    perm_id: int
    client_id: int
    account: str
    contract: Contract
    time: str
    exchange: str
    side: str
    shares: Decimal
    price: Decimal
    cum_qty: Decimal
    avg_price: Decimal
    order_ref: str
    commission: Decimal
    commission_currency: str
    realized_pnl: Decimal

    @classmethod
    def from_wire(cls, x: Mapping[str, Any]) -> "Execution":
        try:
            return cls(exec_id=str(x["exec_id"]), order_id=int(x["order_id"]), perm_id=int(x["perm_id"]),
                       client_id=int(x["client_id"]), account=str(x["account"]),
                       contract=Contract.from_wire(x["contract"]), time=str(x["time"]),
                       exchange=str(x["exchange"]), side=str(x["side"]), order_ref=str(x.get("order_ref", "")),
                       commission_currency=str(x.get("commission_currency", "")),
                       **_decimals(x, ("shares", "price", "cum_qty", "avg_price", "commission", "realized_pnl")))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ProtocolError(f"malformed execution {x!r}: {e}") from e


@dataclass(frozen=True)
class Order:
    """A read-only view of one open or completed order; every number is a Decimal."""

    order_id: int
    perm_id: int
    client_id: int
    account: str
    contract: Contract
    action: str
    order_type: str
    total_quantity: Decimal
    limit_price: Decimal
    aux_price: Decimal
    tif: str
    order_ref: str
    status: str
    filled: Decimal

    @classmethod
    def from_wire(cls, o: Mapping[str, Any]) -> "Order":
        try:
            return cls(order_id=int(o["order_id"]), perm_id=int(o["perm_id"]), client_id=int(o["client_id"]),
                       account=str(o["account"]), contract=Contract.from_wire(o["contract"]),
                       action=str(o["action"]), order_type=str(o["order_type"]), tif=str(o.get("tif", "")),
                       order_ref=str(o.get("order_ref", "")), status=str(o.get("status", "")),
                       **_decimals(o, ("total_quantity", "limit_price", "aux_price", "filled")))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ProtocolError(f"malformed order {o!r}: {e}") from e


@dataclass(frozen=True)
class PlacedOrder:
    """What place_order and modify_order learned: the order's id, its key, the latest status the gateway
    reported, and ``existing``: the key was already known and nothing was placed."""

    order_id: int
    key: str
    status: str = ""
    perm_id: int = 0
    existing: bool = False

    @classmethod
    def from_wire(cls, p: Mapping[str, Any]) -> "PlacedOrder":
        try:
            return cls(order_id=int(p["order_id"]), key=str(p["key"]), status=str(p.get("status", "")),
                       perm_id=int(p.get("perm_id") or 0), existing=bool(p.get("existing", False)))
        except (KeyError, TypeError, ValueError) as e:
            raise ProtocolError(f"malformed placed order {p!r}: {e}") from e


@dataclass(frozen=True)
class OrderEvent:
    """One change of one order: ``kind`` "status" (``order`` holds its new state), "fill" (``fill`` holds the
    execution, ``order`` its id, key and contract) or "gap" (events may have been lost, ``gap`` says why:
    re-read open_orders, completed_orders and executions)."""

    kind: str
    order: Optional[Order] = None
    fill: Optional[Execution] = None
    gap: str = ""

    @classmethod
    def from_wire(cls, e: Mapping[str, Any]) -> "OrderEvent":
        try:
            kind = str(e["kind"])
            if kind == "gap":
                return cls(kind=kind, gap=str(e.get("gap", "")))
            fill = Execution.from_wire(e["fill"]) if e.get("fill") else None
            return cls(kind=kind, order=_partial_order(e.get("order") or {}), fill=fill)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ProtocolError(f"malformed order event {e!r}: {err}") from err


def _partial_order(o: Mapping[str, Any]) -> Order:
    """An Order from an event, whose fill events carry only some fields."""
    full = {"order_id": 0, "perm_id": 0, "client_id": 0, "account": "", "contract": {}, "action": "",
            "order_type": "", "total_quantity": "0", "limit_price": "0", "aux_price": "0", "filled": "0"}
    full.update(o)
    return Order.from_wire(full)


@dataclass(frozen=True)
class ConnectInfo:
    """What a successful connect learned."""

    accounts: list
    server_version: int


@dataclass(frozen=True)
class Event:
    """Something the client or its worker observed without being asked.

    ``kind`` is a worker event (``connection_lost``, ``connection_restored``, ``notice``), or one of the
    client's own: ``state`` (``state`` holds the new :class:`brokerkit.State` value), ``worker_started``,
    ``worker_frozen`` (it missed a health check and is being killed) and ``worker_exited`` (``pid`` names the
    process). ``ib_code`` is 0 when the gateway gave none; unknown kinds should be ignored.
    """

    kind: str
    time: _dt.datetime
    message: str = ""
    ib_code: int = 0
    state: Optional[str] = None
    pid: Optional[int] = None

    @classmethod
    def from_wire(cls, e: Mapping[str, Any]) -> "Event":
        when = _dt.datetime.now(_dt.timezone.utc)
        text = e.get("time")
        if isinstance(text, str):
            try:
                when = _dt.datetime.fromisoformat(_trim_fraction(text.replace("Z", "+00:00")))
            except ValueError:
                pass
        return cls(kind=str(e.get("event")), time=when, message=str(e.get("message", "")),
                   ib_code=int(e.get("ib_code") or 0))


def _trim_fraction(s: str) -> str:
    """fromisoformat in Python < 3.11 takes at most 6 fractional digits; Go sends up to 9."""
    if "." not in s:
        return s
    head, rest = s.split(".", 1)
    digits = len(rest) - len(rest.lstrip("0123456789"))
    return f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}"

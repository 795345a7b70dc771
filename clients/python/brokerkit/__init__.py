"""brokerkit: a Python host of the brokerkit worker, which holds the Interactive Brokers API session in a child
process and speaks JSON lines (transport/stdiojson/PROTOCOL.md). Standard library only.

Two APIs over the same machinery:

* :class:`Client`, typed and asyncio-native: ``connect`` returns :class:`ConnectInfo`, ``positions`` returns
  :class:`Position` values with :class:`decimal.Decimal` numbers, ``events()`` is an async iterator.
* :class:`SubprocessIBKRClient` and :func:`connect_ibkr_robust`, the original plan's names and return shapes.

Both restart a worker that crashes or freezes and reconnect it with the last connect parameters.
"""

from .breaker import BreakerState, CircuitBreaker
from .client import IDEMPOTENT_COMMANDS, Client, State, find_binary
from .compat import SubprocessIBKRClient, connect_ibkr_robust
from .quotes import QuoteStream
from .errors import (APIError, AlreadyConnected, BrokerError, Canceled, CircuitOpen, ClientIDInUse, Closed,
                     DeadlineExceeded, GatewayUnreachable, HandshakeFailed, InvalidArgument, NotConnected,
                     NotFound, NotSubscribed, OutcomeUnknown, Pacing, ProtocolError, ReadOnly, Rejected, Timeout,
                     Unsupported, WorkerExited, WorkerNotFound, WorkerUnavailable)
from .types import (AccountSummary, AccountUpdate, AccountValue, Bar, ConnectInfo, Contract, ContractDetails, Event,
                    Execution, Order, OrderEvent, PlacedOrder, PortfolioItem, Position, Quote, QuoteUpdate,
                    SummaryValue)

__version__ = "0.1.0"

__all__ = [
    "Client", "State", "find_binary", "IDEMPOTENT_COMMANDS", "SubprocessIBKRClient", "connect_ibkr_robust",
    "CircuitBreaker", "BreakerState", "AccountSummary", "ConnectInfo", "Contract", "Event", "Position",
    "SummaryValue", "AccountUpdate", "AccountValue", "PortfolioItem", "Execution", "Order", "BrokerError", "APIError", "AlreadyConnected", "Canceled", "CircuitOpen", "ClientIDInUse",
    "Closed", "DeadlineExceeded", "GatewayUnreachable", "HandshakeFailed", "InvalidArgument", "NotConnected",
    "ProtocolError", "Timeout", "Unsupported", "WorkerExited", "WorkerNotFound", "WorkerUnavailable",
    "Bar", "ContractDetails", "Quote", "NotFound", "NotSubscribed", "Pacing", "QuoteStream", "QuoteUpdate",
    "PlacedOrder", "OrderEvent", "ReadOnly", "Rejected", "OutcomeUnknown",
]

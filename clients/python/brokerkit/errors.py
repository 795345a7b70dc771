"""Exceptions of the brokerkit client.

Every error a worker reports arrives as a :class:`BrokerError` whose ``code`` is the stable wire code of
``transport/stdiojson/PROTOCOL.md``; match on the subclass or on ``code``, never on the text.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional


class BrokerError(Exception):
    """An error response from the worker, or a failure of the worker process itself.

    ``code`` is the wire code (``not_connected``, ``client_id_in_use``, ...); unknown codes are kept as they
    came and the exception is a plain BrokerError. ``ib_code`` is Interactive Brokers' numeric code when the
    gateway gave one, else 0.
    """

    code: str = "internal"
    #: True when repeating the same idempotent call may succeed (see :data:`RETRYABLE_CODES`).
    retryable: bool = False

    def __init__(self, message: str, code: Optional[str] = None, ib_code: int = 0) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.ib_code = ib_code

    @classmethod
    def from_response(cls, resp: Mapping[str, Any]) -> "BrokerError":
        """Builds the exception for an error response line of the worker."""
        code = str(resp.get("code") or "internal")
        ib_code = resp.get("ib_code") or 0
        try:
            ib_code = int(ib_code)
        except (TypeError, ValueError):
            ib_code = 0
        return _BY_CODE.get(code, BrokerError)(str(resp.get("error") or code), code, ib_code)


class NotConnected(BrokerError):
    """No session with the gateway: connect first, or it was lost."""

    code = "not_connected"


class AlreadyConnected(BrokerError):
    """connect while a session is open."""

    code = "already_connected"


class ClientIDInUse(BrokerError):
    """The gateway refused the client id (IB 326)."""

    code = "client_id_in_use"
    retryable = True


class GatewayUnreachable(BrokerError):
    """Nothing accepts TCP connections at host:port."""

    code = "gateway_unreachable"
    retryable = True


class HandshakeFailed(BrokerError):
    """The gateway closed or answered nonsense during the API handshake."""

    code = "handshake_failed"
    retryable = True


class Timeout(BrokerError):
    """The gateway did not answer in time."""

    code = "timeout"
    retryable = True


class WorkerUnavailable(BrokerError):
    """The worker process or its connection is dead or not answering; calls in flight fail with it at once."""

    code = "unavailable"
    retryable = True


class WorkerExited(WorkerUnavailable):
    """The worker process exited; ``returncode`` is its exit status (negative: killed by that signal)."""

    def __init__(self, message: str, returncode: Optional[int] = None) -> None:
        super().__init__(message)
        self.returncode = returncode


class WorkerNotFound(WorkerUnavailable):
    """The worker binary does not exist or cannot be executed; no retry can help."""

    retryable = False

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class CircuitOpen(WorkerUnavailable):
    """The circuit breaker is open: calls fail at once until its cool-down has passed."""

    retryable = False


class ProtocolError(BrokerError):
    """A malformed request or answer, or a worker speaking another protocol version."""

    code = "protocol"


class Closed(BrokerError):
    """The client (or the worker) is closed."""

    code = "closed"


class InvalidArgument(BrokerError):
    """A parameter is out of range."""

    code = "invalid_argument"


class Unsupported(BrokerError):
    """Unknown command."""

    code = "unsupported"


class Canceled(BrokerError):
    """The worker canceled the request."""

    code = "canceled"


class DeadlineExceeded(BrokerError):
    """A deadline inside the worker expired."""

    code = "deadline_exceeded"
    retryable = True


class NotFound(BrokerError):
    """No instrument matches the contract, or several do where one is needed (IB 200)."""

    code = "not_found"


class NotSubscribed(BrokerError):
    """No market data subscription for the instrument (IB 354, 10089): delayed data may be available."""

    code = "not_subscribed"


class Pacing(BrokerError):
    """The gateway's pacing refused the request (IB 100, 101, 162 pacing violation)."""

    code = "pacing"


class ReadOnly(BrokerError):
    """An order command in a read-only session (refused by the worker, nothing sent), or the gateway's own
    read-only refusal (IB 321)."""

    code = "read_only"


class Rejected(BrokerError):
    """The gateway rejected the order (IB 201, 110 price increment, ...; ``ib_code`` says which)."""

    code = "rejected"


class OutcomeUnknown(BrokerError):
    """An order command reached the worker (and perhaps the gateway) and its answer was lost: the worker died,
    the call timed out or the session dropped. The order may exist: look its key up (``open_orders``,
    ``completed_orders``, ``executions``: ``order_ref``) before placing it again. Never retried."""

    code = "outcome_unknown"


class APIError(BrokerError):
    """A gateway error whose ``ib_code`` maps to no other code."""

    code = "api_error"


_BY_CODE = {c.code: c for c in (NotConnected, AlreadyConnected, ClientIDInUse, GatewayUnreachable, HandshakeFailed,
                                 Timeout, WorkerUnavailable, ProtocolError, Closed, InvalidArgument, Unsupported,
                                 Canceled, DeadlineExceeded, NotFound, NotSubscribed, Pacing, ReadOnly, Rejected,
                                 OutcomeUnknown, APIError)}

#: Wire codes after which an idempotent call may be repeated.
RETRYABLE_CODES = frozenset(c.code for c in _BY_CODE.values() if c.retryable)

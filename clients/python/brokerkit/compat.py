"""The original plan's API: ``SubprocessIBKRClient`` and ``connect_ibkr_robust``, over :class:`brokerkit.Client`.

Method names and return shapes are the plan's: ``connect`` and ``ping`` return a bool, ``get_accounts`` a list of
account ids, ``get_positions`` a list of position dicts (the wire shape, with Decimals) and
``get_account_summary`` the dict ``{account: {tag: {"value": Decimal | str, "currency": str}}}``. Failures of
``connect`` and ``ping`` are reported by ``False`` (the exception is kept in ``last_error``); the other calls raise
:class:`brokerkit.BrokerError` subclasses.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any, Iterable, Optional

from .breaker import CircuitBreaker
from .client import Client
from .errors import BrokerError, CircuitOpen, WorkerNotFound

log = logging.getLogger("brokerkit")


class SubprocessIBKRClient:
    """The plan's client: a brokerkit worker in a child process, restarted automatically after a crash or a
    freeze and reconnected with the last connect parameters. Keyword arguments go to :class:`brokerkit.Client`
    (``robust_worker``, ``client_id_policy``, ``health_interval``, ...)."""

    def __init__(self, binary: Optional[str] = None, **options: Any) -> None:
        self.client = Client(binary, **options)
        self.last_error: Optional[BaseException] = None

    async def __aenter__(self) -> "SubprocessIBKRClient":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def pid(self) -> Optional[int]:
        """The current worker's pid."""
        return self.client.pid

    @property
    def is_connected(self) -> bool:
        return self.client.connected

    async def start(self) -> None:
        """Starts the worker; raises WorkerNotFound when the binary is missing."""
        await self.client.start()

    async def connect(self, host: str = "127.0.0.1", port: int = 4002, client_id: int = 1,
                      readonly: bool = False, timeout: float = 10.0) -> bool:
        """True once the session is open; False (and ``last_error``) if the gateway refused or was not there."""
        try:
            await self.client.connect(host, port, client_id, readonly, timeout)
            return True
        except WorkerNotFound:
            raise
        except (BrokerError, asyncio.TimeoutError) as e:
            self.last_error = e
            log.warning("connect to %s:%d failed: %s", host, port, e)
            return False

    async def get_accounts(self) -> list:
        return await self.client.accounts()

    async def get_positions(self) -> list:
        return [p.to_dict() for p in await self.client.positions()]

    async def get_account_summary(self, tags: Optional[Iterable[str]] = None) -> dict:
        return {s.account: {tag: {"value": v.value, "currency": v.currency} for tag, v in s.values.items()}
                for s in await self.client.account_summary(tags)}

    async def ping(self) -> bool:
        """True if the gateway answered one round trip."""
        try:
            await self.client.ping()
            return True
        except (BrokerError, asyncio.TimeoutError) as e:
            self.last_error = e
            return False

    async def disconnect(self) -> None:
        await self.client.disconnect()

    async def stop(self) -> None:
        """Disconnects and stops the worker; no process is left behind."""
        await self.client.close()


_BREAKER = CircuitBreaker(threshold=5, cooldown=30.0)


async def connect_ibkr_robust(host: str = "127.0.0.1", port: int = 4002, client_id: int = 1, *,
                              binary: Optional[str] = None, max_retries: int = 5, base_delay: float = 1.0,
                              max_delay: float = 30.0, timeout: float = 10.0,
                              breaker: Optional[CircuitBreaker] = None, **options: Any) -> SubprocessIBKRClient:
    """The plan's helper: starts a SubprocessIBKRClient and connects it, retrying with exponential backoff and
    jitter, behind a circuit breaker shared by every call of the process unless ``breaker`` is given.

    Returns the connected client; raises CircuitOpen while the breaker is open, WorkerNotFound at once when the
    binary is missing, and the last BrokerError after ``max_retries`` attempts.
    """
    breaker = breaker or _BREAKER
    breaker.allow()
    client = SubprocessIBKRClient(binary, **options)
    try:
        await client.start()
        last: Optional[BaseException] = None
        for attempt in range(1, max(max_retries, 1) + 1):
            breaker.allow()
            if await client.connect(host, port, client_id, timeout=timeout):
                breaker.success()
                return client
            breaker.failure()
            last = client.last_error
            if attempt < max_retries:
                delay = min(max_delay, base_delay * 2 ** (attempt - 1))
                await asyncio.sleep(random.uniform(delay / 2, delay))
        assert last is not None
        raise last
    except BaseException:
        await client.stop()
        raise


__all__ = ["SubprocessIBKRClient", "connect_ibkr_robust", "CircuitOpen"]

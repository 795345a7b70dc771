"""Quote streams (``subscribe_quotes``, PROTOCOL.md "Quote streams"): an async iterator and context manager that
conflates, so that a consumer that does not keep up finds the newest quote and a count of what it missed."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Generator, Optional

from .types import QuoteUpdate

if TYPE_CHECKING:
    from .client import Client


class QuoteStream:
    """A subscription to one contract's quotes, made by :meth:`Client.subscribe_quotes`.

    Use it as an async context manager (``async with client.subscribe_quotes("AAPL") as quotes:``), which
    subscribes on entry and unsubscribes on exit, or await it (``quotes = await client.subscribe_quotes(...)``)
    and call :meth:`aclose` when done. Iterating yields :class:`QuoteUpdate` values: the quote when the stream
    opens, then one per change, or fewer: the stream keeps only the newest update (adding what it replaces to
    ``dropped``), so a consumer that reads slowly, or not at all for a while, never makes the client or the worker
    hold more than one update per stream. Iteration ends when the worker ends the stream (its session ended, the
    worker was restarted) or the client closes; the last update received is always delivered first.
    """

    def __init__(self, client: "Client", contract: dict, timeout: Optional[float]) -> None:
        self._client = client
        self._contract = contract
        self._timeout = timeout
        self.name: Optional[str] = None  # the subscription's name on the wire, once subscribed
        self._latest: Optional[QuoteUpdate] = None
        self._ended = False
        self._closed = False
        self._wake = asyncio.Event()

    async def _open(self) -> "QuoteStream":
        if self.name is None:
            if self._closed:
                raise RuntimeError("quote stream is closed")
            self.name = await self._client._open_stream(self, "subscribe_quotes", {"contract": self._contract},
                                                        self._timeout)
        return self

    def __await__(self) -> Generator[Any, None, "QuoteStream"]:
        return self._open().__await__()

    async def __aenter__(self) -> "QuoteStream":
        return await self._open()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __aiter__(self) -> "QuoteStream":
        return self

    async def __anext__(self) -> QuoteUpdate:
        await self._open()
        while True:
            if self._latest is not None:
                u, self._latest = self._latest, None
                return u
            if self._ended:
                raise StopAsyncIteration
            self._wake.clear()
            await self._wake.wait()

    @property
    def ended(self) -> bool:
        """True once the stream has ended (whether or not its last update has been taken)."""
        return self._ended

    async def aclose(self) -> None:
        """Ends the stream (iteration stops at once, even if an update was waiting) and unsubscribes in the
        worker; idempotent."""
        self._closed = True
        self._latest = None
        self._end()
        if self.name is not None:
            await self._client._unsubscribe(self.name)

    # ---- fed by the client's reader of the worker's stdout ----

    def _offer(self, u: QuoteUpdate) -> None:
        if self._ended:
            return
        self._latest = u if self._latest is None else u.after(self._latest)
        self._wake.set()

    def _end(self) -> None:
        self._ended = True
        self._wake.set()

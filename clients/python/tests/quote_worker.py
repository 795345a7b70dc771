"""A stand-in worker for the quote stream tests of the Python client: it speaks the lines of PROTOCOL.md that a
quote stream uses (hello, connect, disconnect, ping, subscribe_quotes, unsubscribe), as the Go worker writes them,
plus two commands of its own for the tests: ``push`` writes ``n`` quote lines to a stream before answering, and
``streams`` answers the live subscriptions. It lets the client's conflation be tested with any number of lines,
whatever Broker the real worker serves. Run as ``python3 quote_worker.py worker [flags...]``."""

from __future__ import annotations

import json
import os
import sys

CONTRACT = {"con_id": 265598, "symbol": "AAPL", "sec_type": "STK", "expiry": "", "strike": "0", "right": "",
            "multiplier": "", "exchange": "SMART", "currency": "USD", "local_symbol": "AAPL", "trading_class": "NMS"}
COMMANDS = ["hello", "cancel", "connect", "disconnect", "ping", "subscribe_quotes", "unsubscribe"]


def quote(i: int) -> dict:
    n = str(i)
    return {"contract": CONTRACT, "bid": n + ".01", "ask": n + ".02", "last": n + ".015", "bid_size": n,
            "ask_size": n, "last_size": n, "open": "188.2", "high": "0", "low": "0", "close": "188.2",
            "volume": n + "00.5", "halted": False, "market_data_type": "live", "last_time": "2026-12-02T03:40:00Z",
            "time": "2026-12-02T03:40:00.412345678Z"}


def main() -> None:
    out = sys.stdout
    live: dict = {}
    connected = False

    def send(obj: dict) -> None:
        out.write(json.dumps(obj, separators=(",", ":")) + "\n")

    def answer(rid, data=None, code: str = "", error: str = "", ib_code: int = 0) -> None:
        if code:
            send({"id": rid, "status": "error", "code": code, "error": error, **({"ib_code": ib_code} if ib_code else {})})
        else:
            send({"id": rid, "status": "success", "data": data})
        out.flush()

    for line in sys.stdin:
        req = json.loads(line)
        rid, cmd = req.get("id"), req.get("command")
        if cmd == "hello":
            answer(rid, {"protocol": 1, "pid": os.getpid(), "events": True, "commands": COMMANDS})
        elif cmd == "connect":
            connected = True
            answer(rid, {"connected": True, "accounts": ["DU1234567"], "server_version": 176})
        elif cmd == "disconnect":
            connected = False
            answer(rid, {"disconnected": True})
            for name in list(live):
                send({"event": "subscription_end", "subscription": live.pop(name), "time": "2026-12-02T03:40:01Z",
                      "message": "the stream ended (unsubscribed, session ended, or worker stopping)"})
            out.flush()
        elif cmd == "ping":
            answer(rid, {"pong": True}) if connected else answer(rid, code="not_connected", error="broker: not connected")
        elif cmd == "subscribe_quotes":
            sym = (req.get("contract") or {}).get("symbol")
            if not connected:
                answer(rid, code="not_connected", error="broker: not connected")
            elif sym != "AAPL":
                answer(rid, code="not_found", error="ib error 200 (req 1): No security definition has been found",
                       ib_code=200)
            else:
                live[req["subscription"]] = req["subscription"]
                answer(rid, {"subscription": req["subscription"]})
                send({"event": "quote", "subscription": req["subscription"], "quote": quote(0), "dropped": 0})
                out.flush()
        elif cmd == "unsubscribe":
            name = req.get("subscription")
            was = live.pop(name, None) is not None
            answer(rid, {"unsubscribed": was})
            if was:
                send({"event": "subscription_end", "subscription": name, "time": "2026-12-02T03:40:01Z",
                      "message": "the stream ended (unsubscribed, session ended, or worker stopping)"})
                out.flush()
        elif cmd == "push":  # n lines of quotes 1..n, each with "dropped" d, a gap on line gap_at
            name, n, d = req["subscription"], int(req["n"]), int(req.get("dropped", 0))
            for i in range(1, n + 1):
                ev = {"event": "quote", "subscription": name, "quote": quote(i), "dropped": d}
                if i == req.get("gap_at"):
                    ev["gap"] = req.get("gap", "gap")
                send(ev)
            answer(rid, {"pushed": n})
        elif cmd == "streams":
            answer(rid, {"live": sorted(live)})
        else:
            answer(rid, code="unsupported", error=f"unknown command {cmd!r}")


if __name__ == "__main__":
    main()

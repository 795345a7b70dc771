#!/usr/bin/env python3
"""An independent TWS API client (Python standard library only) that checks a
gateway answers a real client's startup sequence.

    python3 examples/twscheck/startup.py [--brokerkit PATH] [--script FILE]

It starts `brokerkit gateway --listen 127.0.0.1:0 --script FILE`, connects as
client id 5 advertising versions 157..178 (the range ib_async advertises), and
sends what ib_async's connectAsync sends: reqPositions, reqOpenOrders,
reqCompletedOrders(apiOnly=False), reqAccountUpdates(True, account) for each
managed account, and reqExecutions. It waits for every end marker (POSITION_END,
OPEN_ORDER_END, COMPLETED_ORDERS_END, ACCT_DOWNLOAD_END per account,
EXECUTION_DATA_END), requires that to take under a second, and checks every
position, account value, portfolio row and execution (with its commission
report) against FILE with exact decimals.

The decoder below is written from the public description of the TWS API socket
protocol (the message layouts of IB's own EDecoder at each server version), not
from brokerkit's code: every message is read field by field, and a message with
too few or too many fields is an error. Exits 0 when every check passed, 1
otherwise; the gateway is stopped on every path.
"""

import argparse
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from decimal import Decimal

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT_MIN, CLIENT_MAX = 157, 178
TIMEOUT = 5.0

# Message ids (IB's EClient/EDecoder constants).
IN_TICK_PRICE = 1
ERR_MSG, ACCT_VALUE, PORTFOLIO_VALUE, ACCT_UPDATE_TIME, NEXT_VALID_ID = 4, 6, 7, 8, 9
EXECUTION_DATA, MANAGED_ACCTS, OPEN_ORDER, OPEN_ORDER_END, ACCT_DOWNLOAD_END = 11, 15, 5, 53, 54
EXECUTION_DATA_END, COMMISSION_REPORT, POSITION_DATA, POSITION_END = 55, 59, 61, 62
COMPLETED_ORDER, COMPLETED_ORDERS_END = 101, 102
REQ_OPEN_ORDERS, REQ_ACCT_DATA, REQ_EXECUTIONS, REQ_POSITIONS, START_API, REQ_COMPLETED_ORDERS = 5, 6, 7, 61, 71, 99


class ProtocolError(Exception):
    """A message that does not have the layout of its id and version."""


class Fields:
    """Reads one message's fields in order; underrun and leftovers are errors."""

    def __init__(self, fields):
        self.f, self.i = fields, 0

    def str(self):
        if self.i >= len(self.f):
            raise ProtocolError(f"message {self.f[0]!r}: underrun at field {self.i}: {self.f!r}")
        self.i += 1
        return self.f[self.i - 1]

    def int(self):
        s = self.str()
        if s == "":
            return 0
        try:
            return int(s)
        except ValueError:
            raise ProtocolError(f"message {self.f[0]!r}: field {self.i - 1} {s!r} is not an integer") from None

    def dec(self):
        s = self.str()
        return Decimal(s) if s != "" else None

    def done(self):
        if self.i != len(self.f):
            raise ProtocolError(f"message {self.f[0]!r}: {len(self.f) - self.i} fields left over: {self.f!r}")


class Conn:
    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), timeout=TIMEOUT)
        self.buf = b""

    def send(self, *fields):
        payload = b"".join(str(f).encode() + b"\0" for f in fields)
        self.s.sendall(struct.pack(">I", len(payload)) + payload)

    def read(self):
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack(">I", self.buf[:4])[0]
                if len(self.buf) >= 4 + n:
                    payload, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
                    if not payload.endswith(b"\0"):
                        raise ProtocolError(f"frame not NUL-terminated: {payload!r}")
                    return payload[:-1].decode().split("\0")
            chunk = self.s.recv(65536)
            if not chunk:
                raise ProtocolError("connection closed by the gateway")
            self.buf += chunk


def contract(r, with_exchange=True):
    c = {"con_id": r.int(), "symbol": r.str(), "sec_type": r.str(), "expiry": r.str(), "strike": r.dec(),
         "right": r.str(), "multiplier": r.str()}
    if with_exchange:
        c["exchange"] = r.str()
    return c


def decode(msg, version):
    """Returns (name, data) for the messages of the startup sequence."""
    r = Fields(msg)
    mid = r.int()
    if mid == POSITION_DATA:
        v = r.int()
        acct = r.str()
        c = contract(r)
        c["currency"], c["local_symbol"] = r.str(), r.str()
        if v >= 2:
            c["trading_class"] = r.str()
        out = ("position", {"account": acct, "contract": c, "quantity": r.dec(), "avg_cost": r.dec() if v >= 3 else None})
    elif mid == ACCT_VALUE:
        r.int()
        out = ("value", {"key": r.str(), "value": r.str(), "currency": r.str(), "account": r.str()})
    elif mid == PORTFOLIO_VALUE:
        v = r.int()
        c = {"con_id": r.int(), "symbol": r.str(), "sec_type": r.str(), "expiry": r.str(), "strike": r.dec(),
             "right": r.str()}
        if v >= 7:
            c["multiplier"], c["primary_exchange"] = r.str(), r.str()
        c["currency"], c["local_symbol"] = r.str(), r.str()
        if v >= 8:
            c["trading_class"] = r.str()
        row = {"contract": c, "position": r.dec(), "market_price": r.dec(), "market_value": r.dec()}
        if v >= 3:
            row["avg_cost"], row["unrealized_pnl"], row["realized_pnl"] = r.dec(), r.dec(), r.dec()
        if v >= 4:
            row["account"] = r.str()
        out = ("portfolio", row)
    elif mid == ACCT_UPDATE_TIME:
        r.int()
        out = ("time", r.str())
    elif mid == EXECUTION_DATA:
        v = version if version >= 136 else r.int()
        req_id = r.int() if v >= 7 else -1
        order_id = r.int()
        c = contract(r)
        c["currency"], c["local_symbol"] = r.str(), r.str()
        if v >= 10:
            c["trading_class"] = r.str()
        e = {"req_id": req_id, "order_id": order_id, "contract": c, "exec_id": r.str(), "time": r.str(),
             "account": r.str(), "exchange": r.str(), "side": r.str(), "shares": r.dec(), "price": r.dec(),
             "perm_id": r.int(), "client_id": r.int(), "liquidation": r.int(), "cum_qty": r.dec(),
             "avg_price": r.dec(), "order_ref": r.str(), "ev_rule": r.str(), "ev_multiplier": r.str()}
        if version >= 103:
            e["model_code"] = r.str()
        if version >= 136:
            e["last_liquidity"] = r.int()
        if version >= 178:
            e["pending_price_revision"] = r.int()
        out = ("execution", e)
    elif mid == COMMISSION_REPORT:
        r.int()
        out = ("commission", {"exec_id": r.str(), "commission": r.dec(), "currency": r.str(), "realized_pnl": r.str(),
                              "yield": r.str(), "yield_redemption_date": r.int()})
    elif mid in (POSITION_END, OPEN_ORDER_END):
        r.int()
        out = ({POSITION_END: "positions end", OPEN_ORDER_END: "open orders end"}[mid], None)
    elif mid == COMPLETED_ORDERS_END:
        out = ("completed orders end", None)
    elif mid == ACCT_DOWNLOAD_END:
        r.int()
        out = ("download end", r.str())
    elif mid == EXECUTION_DATA_END:
        r.int()
        out = ("executions end", r.int())
    elif mid == ERR_MSG:
        if version < 194:
            r.int()
        e = {"id": r.int(), "code": r.int(), "message": r.str()}
        if version >= 166:
            r.str()
        if version >= 194:
            r.int()
        out = ("error", e)
    elif mid in (OPEN_ORDER, COMPLETED_ORDER):
        return ("order", msg)  # layout not checked here: the script holds no orders
    else:
        raise ProtocolError(f"unexpected message id {mid}: {msg!r}")
    r.done()
    return out


class Checks:
    def __init__(self):
        self.passed, self.failed = 0, []

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print(f"ok   {what}")
        else:
            self.failed.append(what)
            print(f"FAIL {what}" + (f"\n       {detail}" if detail else ""))
        return ok


def D(s):
    return Decimal(s) if s not in (None, "") else Decimal(0)


def expected_portfolio(script, p):
    mult = D(p["contract"].get("multiplier") or "1")
    for m in script.get("marks", []):
        if m["account"] == p["account"] and m["con_id"] == p["contract"]["con_id"]:
            price = D(m["market_price"])
            value = D(m["market_value"]) if m.get("market_value") else D(p["quantity"]) * price * mult
            return price, value, D(m.get("unrealized_pnl")), D(m.get("realized_pnl"))
    return D(p["avg_cost"]) / mult, D(p["quantity"]) * D(p["avg_cost"]), Decimal(0), Decimal(0)


def run(host, port, script, ck):
    start = time.monotonic()
    c = Conn(host, port)
    hs = f"v{CLIENT_MIN}..{CLIENT_MAX}".encode()
    c.s.sendall(b"API\0" + struct.pack(">I", len(hs)) + hs)
    reply = c.read()
    version = int(reply[0])
    ck.check(len(reply) == 2 and CLIENT_MIN <= version <= CLIENT_MAX,
             f"handshake: server version {version} inside {CLIENT_MIN}..{CLIENT_MAX}", repr(reply))
    c.send(START_API, 2, 5, "")
    accounts = None
    while True:
        m = c.read()
        if m[0] == str(MANAGED_ACCTS):
            accounts = m[2].split(",")
        if m[0] == str(NEXT_VALID_ID):
            break
    ck.check(accounts == script["accounts"], f"managed accounts {accounts}")
    c.send(REQ_POSITIONS, 1)
    c.send(REQ_OPEN_ORDERS, 1)
    c.send(REQ_COMPLETED_ORDERS, 0)
    for a in accounts or []:
        c.send(REQ_ACCT_DATA, 2, 1, a)
    c.send(REQ_EXECUTIONS, 3, 9001, 0, "", "", "", "", "", "")
    pending = {"positions end", "open orders end", "completed orders end", "executions end"}
    pending |= {f"download end {a}" for a in accounts or []}
    got = {}
    deadline = time.monotonic() + TIMEOUT
    while pending and time.monotonic() < deadline:
        name, data = decode(c.read(), version)
        if name == "error" and data["id"] == -1 and 2000 <= data["code"] < 3000:
            continue  # farm notices
        got.setdefault(name, []).append(data)
        key = f"{name} {data}" if name == "download end" else name
        pending.discard(key)
    took = time.monotonic() - start
    ck.check(not pending, "every end marker arrives", f"missing {sorted(pending)}")
    ck.check(took < 1.0, f"startup completes in under a second ({took * 1000:.1f} ms from connect)")
    ck.check("error" not in got and "order" not in got, "no errors, no orders (the script holds none)",
             repr(got.get("error")))
    ck.check(got.get("executions end") == [9001], "EXECUTION_DATA_END carries request id 9001")

    pos = got.get("position", [])
    problems = []
    for want, g in zip(script["positions"], pos):
        if g["account"] != want["account"] or g["contract"]["con_id"] != want["contract"]["con_id"] \
                or g["quantity"] != D(want["quantity"]) or g["avg_cost"] != D(want["avg_cost"]):
            problems.append(f"{want['contract']['symbol']}: {g}")
    ck.check(len(pos) == len(script["positions"]) and not problems,
             f"positions: {len(script['positions'])} rows, exact decimals", "; ".join(problems))

    vals = got.get("value", [])
    problems = []
    n = 0
    for a in script.get("summary", []):
        for tag, v in a["values"].items():
            n += 1
            match = [x for x in vals if x["account"] == a["account"] and x["key"] == tag]
            if len(match) != 1 or match[0]["value"] != v["value"] or match[0]["currency"] != v.get("currency", ""):
                problems.append(f"{a['account']}/{tag}: {match}")
    ck.check(len(vals) == n and not problems, f"account values: {n}, exact text", "; ".join(problems))

    rows = got.get("portfolio", [])
    problems = []
    for p in script["positions"]:
        match = [r for r in rows if r["account"] == p["account"] and r["contract"]["con_id"] == p["contract"]["con_id"]]
        if len(match) != 1:
            problems.append(f"{p['contract']['symbol']}: {len(match)} rows")
            continue
        r = match[0]
        price, value, unreal, real = expected_portfolio(script, p)
        if (r["position"], r["avg_cost"], r["unrealized_pnl"], r["realized_pnl"]) != \
                (D(p["quantity"]), D(p["avg_cost"]), unreal, real) \
                or abs(r["market_price"] - price) > Decimal("1e-10") or abs(r["market_value"] - value) > Decimal("1e-10"):
            problems.append(f"{p['contract']['symbol']}: got {r}, want price {price} value {value}")
    ck.check(len(rows) == len(script["positions"]) and not problems,
             f"portfolio: {len(script['positions'])} rows, market price/value and PnL exact", "; ".join(problems))
    ck.check(len(got.get("time", [])) == len(accounts or []) and
             all(len(t) == 5 and t[2] == ":" for t in got.get("time", [])), "account update time: HH:mm per account")

    exes, comms = got.get("execution", []), got.get("commission", [])
    problems = []
    for e in script.get("executions", []):
        match = [x for x in exes if x["exec_id"] == e["exec_id"]]
        cm = [x for x in comms if x["exec_id"] == e["exec_id"]]
        if len(match) != 1 or len(cm) != 1:
            problems.append(f"{e['exec_id']}: {len(match)} executions, {len(cm)} commission reports")
            continue
        x = match[0]
        if (x["req_id"], x["order_id"], x["account"], x["side"], x["shares"], x["price"], x["time"],
                x["contract"]["con_id"], cm[0]["commission"], cm[0]["currency"]) != \
                (9001, e.get("order_id", 0), e["account"], e["side"], D(e["shares"]), D(e["price"]), e["time"],
                 e["contract"]["con_id"], D(e.get("commission")), e.get("commission_currency", "")):
            problems.append(f"{e['exec_id']}: got {x} / {cm[0]}")
    ck.check(len(exes) == len(script.get("executions", [])) and not problems,
             f"executions: {len(exes)} with commission reports, exact decimals", "; ".join(problems))
    c.s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--brokerkit", default=os.path.join(HERE, "..", "..", "bin", "brokerkit"))
    ap.add_argument("--script", default=os.path.join(HERE, "..", "..", "fakes", "testdata", "demo.json"))
    args = ap.parse_args()
    with open(args.script) as f:
        script = json.load(f)
    gw = subprocess.Popen([args.brokerkit, "gateway", "--listen", "127.0.0.1:0", "--script", args.script],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ck = Checks()
    try:
        line = gw.stdout.readline().strip()
        if not line.startswith("listening on "):
            ck.check(False, "gateway prints its address", f"{line!r} {gw.stderr.read() if gw.poll() is not None else ''}")
        else:
            host, port = line[len("listening on "):].rsplit(":", 1)
            try:
                run(host, int(port), script, ck)
            except (ProtocolError, OSError) as e:
                ck.check(False, "the session completes", str(e))
    finally:
        gw.send_signal(signal.SIGTERM)
        try:
            code = gw.wait(timeout=5)
        except subprocess.TimeoutExpired:
            gw.kill()
            code = gw.wait()
    ck.check(code == 0, f"gateway exits 0 on SIGTERM (got {code})")
    print(f"{ck.passed} passed, {len(ck.failed)} failed")
    return 0 if not ck.failed else 1


if __name__ == "__main__":
    sys.exit(main())

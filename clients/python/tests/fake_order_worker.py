#!/usr/bin/env python3
"""A scripted stand-in for `brokerkit worker` that speaks just enough of the protocol to steer the Python
client's order handling: place_order with key "die" exits after reading it, "hang" never answers, "burst:N"
answers and then writes N order events at once on every order stream, "echo..." answers the quantity and limit
price it received as the status; anything else is placed as order 1.
Command-line arguments (the client's worker flags) are ignored."""

import json
import os
import sys

streams = []


def send(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def order_event(i):
    return {"kind": "status", "order": {"order_id": i, "perm_id": 1000 + i, "client_id": 1, "account": "DU1",
                                        "contract": {"con_id": 265598, "symbol": "AAPL", "sec_type": "STK"},
                                        "action": "BUY", "order_type": "MKT", "total_quantity": "0.5",
                                        "limit_price": "0", "aux_price": "0", "tif": "DAY", "order_ref": "k",
                                        "status": "Submitted", "filled": "0"}}


for line in sys.stdin:
    req = json.loads(line)
    rid, cmd = req.get("id"), req.get("command")
    if cmd == "hello":
        send({"id": rid, "status": "success", "data": {"protocol": 1, "pid": os.getpid(), "events": True,
                                                          "commands": ["hello"]}})
    elif cmd == "connect":
        send({"id": rid, "status": "success", "data": {"connected": True, "accounts": ["DU1"], "server_version": 176}})
    elif cmd == "subscribe_orders":
        streams.append(req["subscription"])
        send({"id": rid, "status": "success", "data": {"subscription": req["subscription"]}})
    elif cmd == "place_order":
        key = req["order"]["key"]
        if key == "die":
            sys.exit(3)
        if key == "hang":
            continue
        if key == "readonly":
            send({"id": rid, "status": "error", "code": "read_only", "error": "read-only session"})
            continue
        if key == "unavailable":  # the worker's own verdict (a robust worker's open breaker): nothing was sent
            send({"id": rid, "status": "error", "code": "unavailable", "error": "robust: circuit breaker open"})
            continue
        if key == "reject":
            send({"id": rid, "status": "error", "code": "rejected", "error": "ib error 201: rejected", "ib_code": 201})
            continue
        o = req["order"]
        status = "Submitted"
        if key.startswith("echo"):  # the request's decimals as received, to check their text
            status = f'{o["quantity"]}@{o.get("limit_price", "")}'
        send({"id": rid, "status": "success", "data": {"order_id": 1, "perm_id": 1001, "key": key, "status": status}})
        if key.startswith("burst:"):
            for s in streams:
                for i in range(int(key.split(":")[1])):
                    send({"event": "order", "subscription": s, "time": "2026-12-02T00:00:00Z",
                          "update": order_event(i + 1)})
    elif cmd == "cancel":
        send({"id": rid, "status": "success", "data": {"canceled": False}})
    else:
        send({"id": rid, "status": "success", "data": {}})

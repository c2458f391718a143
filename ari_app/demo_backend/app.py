"""The demo backend's HTTP handlers (aiohttp) over sqlite3."""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import sqlite3
from datetime import date
from pathlib import Path
from typing import Any

from aiohttp import web

from ari_app.demo_backend.seed import seed
from ari_app.dialog.tools import SIGNATURE_HEADER, sign

SECRET_ENV = "IVA_DEMO_SECRET"
DB = web.AppKey("db", sqlite3.Connection)
SECRET = web.AppKey("secret", str)


async def _args(request: web.Request) -> dict[str, Any]:
    body = await request.read()
    expected = sign(request.app[SECRET], body)
    if not hmac.compare_digest(expected, request.headers.get(SIGNATURE_HEADER, "")):
        raise web.HTTPUnauthorized(text=json.dumps({"error": "bad or missing signature"}),
                                   content_type="application/json")  # fmt: skip
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise web.HTTPBadRequest(
            text='{"error": "body is not JSON"}', content_type="application/json"
        ) from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(
            text='{"error": "body must be a JSON object"}', content_type="application/json"
        )
    return data


def _need(data: dict[str, Any], *keys: str) -> list[Any]:
    missing = [k for k in keys if data.get(k) in (None, "")]
    if missing:
        raise web.HTTPBadRequest(text=json.dumps({"error": f"missing: {', '.join(missing)}"}),
                                 content_type="application/json")  # fmt: skip
    return [data[k] for k in keys]


async def verify_customer(request: web.Request) -> web.Response:
    phone, dob = _need(await _args(request), "phone", "dob")
    row = (
        request.app[DB]
        .execute("SELECT id, name FROM customers WHERE phone=? AND dob=?", (phone, dob))
        .fetchone()
    )
    if row is None:
        return web.json_response({"found": False})
    return web.json_response({"found": True, "customer_id": row[0], "name": row[1].split()[0]})


async def find_appointment(request: web.Request) -> web.Response:
    (cid,) = _need(await _args(request), "customer_id")
    row = (
        request.app[DB]
        .execute(
            "SELECT id, day, time, provider FROM appointments WHERE customer_id=? AND status='booked' ORDER BY day",
            (cid,),
        )
        .fetchone()
    )
    if row is None:
        return web.json_response({"found": False})
    return web.json_response({"found": True, "appointment_id": row[0], "date": row[1], "time": row[2],
                              "provider": row[3]})  # fmt: skip


async def open_slots(request: web.Request) -> web.Response:
    (day,) = _need(await _args(request), "date")
    try:
        weekday = date.fromisoformat(day).weekday()
    except ValueError:
        raise web.HTTPBadRequest(
            text='{"error": "date must be YYYY-MM-DD"}', content_type="application/json"
        ) from None
    times = [r[0] for r in request.app[DB].execute("SELECT time FROM slots WHERE day_of_week=? ORDER BY time",
                                                   (weekday,))]  # fmt: skip
    return web.json_response({"date": day, "times": times, "available": bool(times)})


async def book(request: web.Request) -> web.Response:
    appt, day, time = _need(await _args(request), "appointment_id", "date", "time")
    db = request.app[DB]
    cur = db.execute("UPDATE appointments SET day=?, time=? WHERE id=?", (day, time, appt))
    db.commit()
    if cur.rowcount == 0:
        return web.json_response({"ok": False})
    return web.json_response({"ok": True, "confirmation": f"A{int(appt):04d}{day.replace('-', '')[4:]}"})


async def duplicate_charge(request: web.Request) -> web.Response:
    (cid,) = _need(await _args(request), "customer_id")
    row = (
        request.app[DB]
        .execute(
            "SELECT MAX(id), day, amount, merchant, COUNT(*) FROM charges WHERE customer_id=? AND refunded=0 "
            "GROUP BY day, amount, merchant HAVING COUNT(*) > 1",
            (cid,),
        )
        .fetchone()
    )
    if row is None:
        return web.json_response({"found": False})
    return web.json_response({"found": True, "charge_id": row[0], "date": row[1], "amount": row[2],
                              "merchant": row[3]})  # fmt: skip


async def refund(request: web.Request) -> web.Response:
    (charge_id,) = _need(await _args(request), "charge_id")
    db = request.app[DB]
    cur = db.execute("UPDATE charges SET refunded=1 WHERE id=? AND refunded=0", (charge_id,))
    db.commit()
    if cur.rowcount == 0:
        return web.json_response({"ok": False})
    amount = db.execute("SELECT amount FROM charges WHERE id=?", (charge_id,)).fetchone()[0]
    return web.json_response({"ok": True, "refund_id": f"R{int(charge_id):05d}", "amount": amount})


async def order_status(request: web.Request) -> web.Response:
    (number,) = _need(await _args(request), "order_number")
    row = request.app[DB].execute("SELECT status, eta FROM orders WHERE number=?", (str(number),)).fetchone()
    if row is None:
        return web.json_response({"found": False})
    return web.json_response({"found": True, "status": row[0], "eta": row[1]})


async def fault(request: web.Request) -> web.StreamResponse:
    """Test-only failures for the tools' fallback paths (enabled with ``faults=True``)."""
    kind = request.match_info["kind"]
    if kind == "500":
        return web.json_response({"error": "boom"}, status=500)
    if kind == "garbage":
        return web.Response(text="<html>definitely not json", content_type="text/html")
    if kind == "slow":  # answers, but only after the holding phrase is due
        await asyncio.sleep(1.0)
        return web.json_response({"found": True, "status": "shipped", "eta": "2030-01-01"})
    await asyncio.sleep(3600)  # hang
    return web.json_response({})


def create_app(
    db_path: str | Path = ":memory:", secret: str | None = None, faults: bool = False
) -> web.Application:
    secret = secret or os.environ.get(SECRET_ENV)
    if not secret:
        raise ValueError(f"the demo backend needs an HMAC secret: set {SECRET_ENV} or pass secret=")
    conn = sqlite3.connect(str(db_path), check_same_thread=False)
    seed(conn)
    app = web.Application()
    app[DB], app[SECRET] = conn, secret
    app.router.add_post("/customers/verify", verify_customer)
    app.router.add_post("/appointments/find", find_appointment)
    app.router.add_post("/appointments/slots", open_slots)
    app.router.add_post("/appointments/book", book)
    app.router.add_post("/charges/duplicate", duplicate_charge)
    app.router.add_post("/refunds", refund)
    app.router.add_post("/orders/status", order_status)
    if faults:
        app.router.add_post("/_fault/{kind}", fault)

    async def close_db(_app: web.Application) -> None:
        conn.close()

    app.on_cleanup.append(close_db)
    return app

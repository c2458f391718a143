"""The demo backend's HTTP handlers (aiohttp) over sqlite3, behaving as we ask real backends to.

Two middlewares stand before every handler. ``signed`` refuses a request whose v1 signature
(``ari_app.dialog.tools.verify``) is missing, wrong or outside the time window: 401 with the
reason as JSON. ``idempotent`` remembers the answer to each ``Idempotency-Key`` (the newest
``IDEMPOTENCY_MAX_KEYS``, for ``IDEMPOTENCY_TTL_S``): the same key with the same request gets the
first answer again (``Idempotent-Replayed: true``) without running the handler, so a retried or
taken-over booking or refund is applied once; the same key with another method, path or body is
refused with 422. A repeat that arrives while the first is still being handled waits for it.
5xx answers are not remembered: the request may be tried again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from ari_app.demo_backend.seed import seed
from ari_app.dialog.tools import IDEMPOTENCY_HEADER, SignatureInvalid, verify

SECRET_ENV = "IVA_DEMO_SECRET"
SIGNATURE_WINDOW_S = 300
IDEMPOTENCY_MAX_KEYS = 10_000
IDEMPOTENCY_TTL_S = 24 * 3600
REPLAYED_HEADER = "Idempotent-Replayed"


@dataclass(frozen=True)
class Answer:
    """A response as remembered for its key, with what identified the request."""

    fingerprint: str
    status: int
    body: bytes
    content_type: str
    stored_at: float

    def response(self) -> web.Response:
        return web.Response(status=self.status, body=self.body, content_type=self.content_type,
                            headers={REPLAYED_HEADER: "true"})  # fmt: skip


@dataclass
class IdempotencyStore:
    """Answers by Idempotency-Key: the newest ``max_keys``, each for ``ttl_s`` (in memory)."""

    max_keys: int = IDEMPOTENCY_MAX_KEYS
    ttl_s: float = IDEMPOTENCY_TTL_S
    clock: Callable[[], float] = time.monotonic
    answers: OrderedDict[str, Answer] = field(default_factory=OrderedDict)
    in_flight: dict[str, asyncio.Event] = field(default_factory=dict)

    def get(self, key: str) -> Answer | None:
        answer = self.answers.get(key)
        if answer is not None and self.clock() - answer.stored_at > self.ttl_s:
            del self.answers[key]
            return None
        return answer

    def put(self, key: str, answer: Answer) -> None:
        self.answers[key] = answer
        self.answers.move_to_end(key)
        while len(self.answers) > self.max_keys:
            self.answers.popitem(last=False)


DB = web.AppKey("db", sqlite3.Connection)
SECRET = web.AppKey("secret", str)
IDEMPOTENCY = web.AppKey("idempotency", IdempotencyStore)
CLOCK = web.AppKey("clock", Callable[[], float])


def _error(http: type[web.HTTPException], message: str) -> web.HTTPException:
    return http(text=json.dumps({"error": message}), content_type="application/json")


@web.middleware
async def signed(request: web.Request, handler: Handler) -> web.StreamResponse:
    body = await request.read()
    try:
        verify(request.app[SECRET], request.headers, request.method, request.raw_path, body,
               now=request.app[CLOCK](), window_s=SIGNATURE_WINDOW_S)  # fmt: skip
    except SignatureInvalid as e:
        raise _error(web.HTTPUnauthorized, f"signature: {e.reason}") from None
    return await handler(request)


@web.middleware
async def idempotent(request: web.Request, handler: Handler) -> web.StreamResponse:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return await handler(request)
    if not key or len(key) > 255:
        raise _error(web.HTTPBadRequest, f"{IDEMPOTENCY_HEADER} must be 1 to 255 characters")
    store = request.app[IDEMPOTENCY]
    fingerprint = hashlib.sha256(
        f"{request.method}\n{request.raw_path}\n".encode() + await request.read()
    ).hexdigest()
    while (busy := store.in_flight.get(key)) is not None:  # a retry while the first is still running
        await busy.wait()
    if (answer := store.get(key)) is not None:
        if answer.fingerprint != fingerprint:
            raise _error(web.HTTPUnprocessableEntity, f"{IDEMPOTENCY_HEADER} reused for another request")
        return answer.response()
    store.in_flight[key] = done = asyncio.Event()
    try:
        status, body, content_type = await _run(handler, request)
        if status < 500:
            store.put(key, Answer(fingerprint, status, body, content_type, store.clock()))
    finally:
        del store.in_flight[key]
        done.set()
    return web.Response(status=status, body=body, content_type=content_type)


async def _run(handler: Handler, request: web.Request) -> tuple[int, bytes, str]:
    """The handler's answer as (status, body, content type), 4xx exceptions included."""
    try:
        resp = await handler(request)
    except web.HTTPException as e:
        if e.status >= 500:
            raise
        return e.status, (e.text or "").encode(), e.content_type
    if not isinstance(resp, web.Response):
        raise TypeError("idempotent handlers must answer with a whole web.Response")
    body = resp.body if isinstance(resp.body, bytes) else b""
    return resp.status, body, resp.content_type


async def _args(request: web.Request) -> dict[str, Any]:
    body = await request.read()
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
            "SELECT id, day, time, provider FROM appointments WHERE customer_id=? AND status IN ('booked', 'confirmed') ORDER BY day",
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


async def set_status(request: web.Request, status: str) -> web.Response:
    (appt,) = _need(await _args(request), "appointment_id")
    db = request.app[DB]
    cur = db.execute("UPDATE appointments SET status=? WHERE id=? AND status!='cancelled'", (status, appt))
    db.commit()
    return web.json_response({"ok": cur.rowcount > 0, "status": status})


async def confirm_appointment(request: web.Request) -> web.Response:
    return await set_status(request, "confirmed")


async def cancel_appointment(request: web.Request) -> web.Response:
    return await set_status(request, "cancelled")


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
    db_path: str | Path = ":memory:",
    secret: str | None = None,
    faults: bool = False,
    *,
    clock: Callable[[], float] = time.time,
    idempotency: IdempotencyStore | None = None,
) -> web.Application:
    secret = secret or os.environ.get(SECRET_ENV)
    if not secret:
        raise ValueError(f"the demo backend needs an HMAC secret: set {SECRET_ENV} or pass secret=")
    conn = sqlite3.connect(str(db_path), check_same_thread=False)
    seed(conn)
    app = web.Application(middlewares=[signed, idempotent])
    app[DB], app[SECRET], app[CLOCK] = conn, secret, clock
    app[IDEMPOTENCY] = idempotency or IdempotencyStore()
    app.router.add_post("/customers/verify", verify_customer)
    app.router.add_post("/appointments/find", find_appointment)
    app.router.add_post("/appointments/slots", open_slots)
    app.router.add_post("/appointments/book", book)
    app.router.add_post("/appointments/confirm", confirm_appointment)
    app.router.add_post("/appointments/cancel", cancel_appointment)
    app.router.add_post("/charges/duplicate", duplicate_charge)
    app.router.add_post("/refunds", refund)
    app.router.add_post("/orders/status", order_status)
    if faults:
        app.router.add_post("/_fault/{kind}", fault)

    async def close_db(_app: web.Application) -> None:
        conn.close()

    app.on_cleanup.append(close_db)
    return app

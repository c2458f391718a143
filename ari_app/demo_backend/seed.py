"""Seed data: a few customers with appointments, charges (one duplicated) and orders.

Appointment dates are relative to today so the flows always have future slots to offer.
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta

SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (id INTEGER PRIMARY KEY, name TEXT, phone TEXT UNIQUE, dob TEXT);
CREATE TABLE IF NOT EXISTS appointments (id INTEGER PRIMARY KEY, customer_id INTEGER, day TEXT, time TEXT,
    provider TEXT, status TEXT DEFAULT 'booked');
CREATE TABLE IF NOT EXISTS slots (day_of_week INTEGER, time TEXT);
CREATE TABLE IF NOT EXISTS charges (id INTEGER PRIMARY KEY, customer_id INTEGER, day TEXT, amount TEXT,
    merchant TEXT, refunded INTEGER DEFAULT 0);
CREATE TABLE IF NOT EXISTS orders (number TEXT PRIMARY KEY, customer_id INTEGER, status TEXT, eta TEXT);
"""

CUSTOMERS = [
    (1, "Dana Whitfield", "5551234567", "1985-04-12"),
    (2, "Omar Haddad", "5559876543", "1990-11-03"),
    (3, "Lena Park", "5550001111", "1978-01-30"),
]
# Opening hours: weekdays (0=Monday) get different times so a corrected date changes the offer.
SLOTS = [
    (d, t) for d in range(5) for t in (["09:00", "11:30", "14:00"] if d % 2 == 0 else ["10:00", "15:30"])
]


def seed(conn: sqlite3.Connection, today: date | None = None) -> None:
    today = today or date.today()
    conn.executescript(SCHEMA)
    if conn.execute("SELECT COUNT(*) FROM customers").fetchone()[0]:
        return
    last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=14)
    conn.executemany("INSERT INTO customers VALUES (?,?,?,?)", CUSTOMERS)
    conn.executemany(
        "INSERT INTO appointments (customer_id, day, time, provider) VALUES (?,?,?,?)",
        [
            (1, (today + timedelta(days=3)).isoformat(), "10:00", "Dr. Alvarez"),
            (2, (today + timedelta(days=5)).isoformat(), "14:00", "Dr. Chen"),
        ],
    )
    conn.executemany("INSERT INTO slots VALUES (?,?)", SLOTS)
    conn.executemany(
        "INSERT INTO charges (customer_id, day, amount, merchant) VALUES (?,?,?,?)",
        [
            (1, last_month.isoformat(), "49.99", "Acme Streaming"),
            (1, last_month.isoformat(), "49.99", "Acme Streaming"),  # the duplicate
            (2, last_month.isoformat(), "12.50", "Acme Streaming"),
        ],
    )
    conn.executemany(
        "INSERT INTO orders VALUES (?,?,?,?)",
        [
            ("10452", 1, "shipped", (today + timedelta(days=2)).isoformat()),
            ("20077", 2, "processing", (today + timedelta(days=6)).isoformat()),
            ("31415", 3, "delivered", (today - timedelta(days=1)).isoformat()),
        ],
    )
    conn.commit()

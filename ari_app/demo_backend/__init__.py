"""A small real backend for the reference flows: customers, appointments, charges, orders.

``create_app(db_path, secret=...)`` for tests; ``python -m ari_app.demo_backend --port 8765``
to run it. Every request must carry a valid ``X-IVA-Signature`` (HMAC-SHA256 of the body).
"""

from ari_app.demo_backend.app import create_app

__all__ = ["create_app"]

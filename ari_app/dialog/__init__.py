"""The dialogue room: YAML flows, an I/O-free dialogue engine with repair patterns, say-or-press
slots, governed tool webhooks and structural escalation.

Kept import-free on purpose so ``ari_app.dialog.nlu`` can be imported without pulling in the
engine. Public entry points: ``ari_app.dialog.loader.load_flows`` / ``check_flows`` and
``ari_app.dialog.engine.DialogEngine``.
"""

"""outbound: campaigns of outbound calls — who to call, when, how often, and what came of it.

Why: a clinic's reminders or a shop's delivery confirmations are the same agent calling out
instead of answering. This package is the campaign core: the campaign and contact files
(``campaign``, ``contacts``), the calling window (``window``), the do-not-call list (``dnc``),
the state in Redis that guarantees nobody is called twice by a restart (``state``, its Lua
``scripts`` and the ``records`` it hands out), pacing that keeps room for inbound callers
(``pacer``), the loop that runs a campaign (``dialer``) and the results (``results``). Placing
the call itself on Asterisk is an ``Originator`` (see dialer).
"""

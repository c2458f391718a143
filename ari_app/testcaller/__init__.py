"""Real SIP + RTP test peers: a caller (UAC) that speaks into Asterisk and records what it hears
on the wire, and an agent phone (UAS) for transfer tests. Used by tests, benchmarks and
``ari-app call``."""

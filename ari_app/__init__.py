"""ari_app: a local intelligent virtual agent for Asterisk (ARI)."""

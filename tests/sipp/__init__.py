"""sipp scenarios for real SIP calls into the embedded Asterisk, and helpers to run them."""

"""The agent room: what runs inside a live call (listen, decide, speak, record)."""

"""Decisions promptd writes into the log: every one goes through a command here."""

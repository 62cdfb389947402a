"""Koji: the adapter (adapter.py), its session (session.py) and its failures (errors.py)."""

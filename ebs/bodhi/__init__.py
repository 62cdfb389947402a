"""Bodhi: the adapter (adapter.py) and its failures (errors.py)."""

"""Data crossing workflow and activity boundaries: the leaf layer, importing nothing from ebs.

See docs/ARCHITECTURE.md.
"""

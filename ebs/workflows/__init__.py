"""Temporal workflows of ebs."""

"""Audit log adapters and audit review."""

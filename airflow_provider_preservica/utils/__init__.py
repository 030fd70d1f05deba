"""Deprecated helpers kept for their old import paths (``utils.totp`` is ``client.auth.totp`` now)."""

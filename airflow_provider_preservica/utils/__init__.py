"""Deprecated helpers kept for their old import paths (``utils.totp`` is ``auth.totp`` now)."""

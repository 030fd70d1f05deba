"""Authentication: how a token is obtained (``login``, the 2FA code in ``totp``), cached and shared between
tasks (``cache``, ``stores``, ``locks``, ``lease``) and dropped. Settings come from ``connection/``; HTTP from
the client's transport.
"""

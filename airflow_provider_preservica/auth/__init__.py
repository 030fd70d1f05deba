"""Authentication: where settings come from, how a token is obtained, cached, shared and dropped."""

"""The inference data plane: a bare ASGI app and the replica process that serves it."""

"""The replica process and its data plane: a bare ASGI app serving `/v2` and the OpenAI-style
routes, started by serving/launcher.py. It maps errors with the same table as the API
(modelhub/web/status.py)."""

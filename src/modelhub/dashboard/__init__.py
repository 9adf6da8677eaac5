"""The web dashboard, served by `modelhub server` at `/`.

Server-rendered pages (Jinja2) with htmx for partial updates; each view parses, calls
the same service methods the REST API calls, and renders. It holds no logic of its own
and is no second way to do anything. Signing in keeps the API token in an HttpOnly,
SameSite=Strict cookie; every request that changes something carries a CSRF token.
"""

"""What the sandbox tests' probe scripts share: try an action, say what happened."""

PROBE_HELPERS = """
def attempt(action):
    try:
        action()
    except OSError as exc:
        return type(exc).__name__
    return "allowed"


def read(path):
    return lambda: open(path, "rb").read()
"""

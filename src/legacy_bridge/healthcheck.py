"""The container's HEALTHCHECK: exit 0 when the local proxy answers /healthz.

Runs every few seconds for the life of the container, so it imports only the
standard library (`python -m legacy_bridge.healthcheck`), never the CLI, the
settings model or the app. It reads the same two settings the server listens on.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

# Binding to every interface means the proxy is reachable on loopback.
_ANY = ("0.0.0.0", "::", "")


def url(environ: dict[str, str] | os._Environ[str] = os.environ) -> str:
    host = environ.get("BRIDGE_HOST", "127.0.0.1").strip()
    host = "127.0.0.1" if host in _ANY else host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{environ.get('BRIDGE_PORT', '8080').strip()}/healthz"


def check(timeout: float = 2.0) -> str | None:
    """None when healthy, else why not (never a body or a header: nothing to leak)."""
    # No proxy: an egress proxy from HTTP_PROXY must not answer for loopback.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url(), timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        return f"not healthy: {type(exc).__name__}"
    return None if status == 200 else f"not healthy: HTTP {status}"


def main() -> int:
    problem = check()
    print(problem or "healthy", file=sys.stderr if problem else sys.stdout)
    return 1 if problem else 0


if __name__ == "__main__":
    sys.exit(main())

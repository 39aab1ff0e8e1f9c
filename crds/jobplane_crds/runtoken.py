"""Run-scoped tokens: a pod proves which run it reports for with an HMAC of the run's UID.

The operator and the API share one key; nothing is stored per run, and a token opens nothing but the
reports and input files of its own run.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["MIN_KEY_BYTES", "run_token", "verify_run_token"]

# A shorter key would make the tokens guessable; 32 bytes is what `openssl rand -hex 32` gives.
MIN_KEY_BYTES = 32


def _checked(key: bytes) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the run-token key must be at least {MIN_KEY_BYTES} bytes long")
    return key


def run_token(key: bytes, run_uid: str) -> str:
    """The token of the run with ``run_uid``: hex HMAC-SHA256 under ``key``."""
    return hmac.new(_checked(key), run_uid.encode(), hashlib.sha256).hexdigest()


def verify_run_token(key: bytes, run_uid: str, token: str) -> bool:
    """Whether ``token`` is the token of ``run_uid``, compared in constant time."""
    return hmac.compare_digest(run_token(key, run_uid), token.strip())

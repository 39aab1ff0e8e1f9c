"""`jobplane api`: serve the API with uvicorn."""

from __future__ import annotations

import logging

import uvicorn

from jobplane_api.app import create_app
from jobplane_api.settings import ApiSettings

__all__ = ["serve"]


def serve(settings: ApiSettings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = create_app(settings)
    # Behind a Service or an Ingress: trust X-Forwarded-* so next/previous links carry the public URL.
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        proxy_headers=True,
        forwarded_allow_ips="*",
        log_level="info",
        access_log=True,
    )
    return 0

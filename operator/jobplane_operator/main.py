"""`jobplane operator`: runs the kopf handlers until stopped."""

from __future__ import annotations

import logging

from jobplane.settings import Settings
from jobplane_operator.settings import get_operator_settings

__all__ = ["run_operator"]

log = logging.getLogger(__name__)


def run_operator(defaults: Settings) -> int:
    import kopf

    from jobplane_operator.handlers import build_registry

    settings = get_operator_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.info("operator starting namespaces=%s image=%s", settings.namespaces or "all", settings.image)
    kopf.run(
        registry=build_registry(settings, defaults),
        standalone=True,
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
    )
    return 0

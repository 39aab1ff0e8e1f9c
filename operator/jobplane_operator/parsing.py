"""Custom resources as kopf hands them, parsed into their models for the operator's indexes."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import ValidationError

from jobplane_crds.v1alpha1.common import Resource

__all__ = ["parsed"]

log = logging.getLogger(__name__)

R = TypeVar("R", bound=Resource)


def parsed(model: type[R], body: Mapping[str, Any]) -> R | None:
    """``body`` read through ``model``, once per change of the object; None (and a warning naming the
    object and the first error) when it does not fit. The CRDs are generated from the same models, so a
    stored object fits unless the installed CRD is older than the operator: such an object is left out of
    the index, as if it did not exist, rather than failing every event of its kind."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        meta = body.get("metadata") or {}
        error = exc.errors(include_url=False, include_input=False)[0]
        log.warning(
            "%s left out: it does not fit the model name=%s/%s field=%s error=%s",
            model.kind_name, meta.get("namespace"), meta.get("name"),
            ".".join(str(part) for part in error["loc"]), error["msg"],
        )  # fmt: skip
        return None

"""Custom resources as kopf hands them, parsed into their models for the operator's indexes."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from jobplane_crds.v1alpha1.common import Resource

__all__ = ["Listed", "listed", "parsed"]

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


@dataclass(frozen=True)
class Listed(Generic[R]):
    """A listing of one kind read through its model: the objects that fit, and the names of those left out
    (a planner writes nothing over an object it could not read)."""

    fits: list[R]
    refused: frozenset[str]


def listed(model: type[R], bodies: Iterable[Mapping[str, Any]]) -> Listed[R]:
    """``bodies`` (an API listing of one namespace) read through ``model``, each as :func:`parsed` does."""
    fits: list[R] = []
    refused: set[str] = set()
    for body in bodies:
        obj = parsed(model, body)
        if obj is not None:
            fits.append(obj)
        else:
            refused.add(str(body["metadata"]["name"]))  # a listed object always has a name
    return Listed(fits, frozenset(refused))

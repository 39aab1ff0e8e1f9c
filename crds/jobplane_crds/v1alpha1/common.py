"""Pieces shared by the v1alpha1 kinds: the model base (camelCase, docstring descriptions) and Conditions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = ["VERSION", "Condition", "CrdModel", "ObjectMeta", "PrinterColumn", "Resource"]

VERSION = "v1alpha1"


class CrdModel(BaseModel):
    """Base of every spec/status model: camelCase on the wire, field docstrings become descriptions."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
        extra="forbid",
    )


class Condition(CrdModel):
    """One aspect of an object's state, as in the Kubernetes API conventions."""

    type: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9]*$", max_length=316)
    """Kind of condition, in PascalCase (Ready, Valid, ...)."""
    status: Literal["True", "False", "Unknown"]
    """Whether the condition holds."""
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", max_length=1024)
    """Machine-readable reason for the last transition, in PascalCase."""
    message: str = Field(default="", max_length=32768)
    """Human-readable details."""
    observed_generation: int = Field(default=0, ge=0)
    """The metadata.generation the condition was computed from."""
    last_transition_time: datetime
    """When the status last changed."""


class ObjectMeta(CrdModel):
    """The part of metadata the models read; the rest passes through untouched."""

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    resource_version: str | None = None
    creation_timestamp: datetime | None = None


class PrinterColumn(BaseModel):
    """A column of `kubectl get`."""

    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0

    def render(self) -> dict[str, Any]:
        column: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.description:
            column["description"] = self.description
        if self.priority:
            column["priority"] = self.priority
        return column


class Resource(CrdModel):
    """A namespaced custom resource: apiVersion, kind, metadata, spec and status."""

    model_config = ConfigDict(extra="ignore")

    kind_name: ClassVar[str]
    plural: ClassVar[str]
    short_names: ClassVar[tuple[str, ...]] = ()
    printer_columns: ClassVar[tuple[PrinterColumn, ...]] = ()
    # CEL rules on the whole object (the only place that sees metadata.name).
    root_validations: ClassVar[tuple[dict[str, str], ...]] = ()

    api_version: str = f"jobplane.io/{VERSION}"
    kind: str = ""
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)

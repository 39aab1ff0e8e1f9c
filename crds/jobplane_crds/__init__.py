"""Jobplane's custom resources: pydantic models (the single source) and the CRD renderer."""

from __future__ import annotations

GROUP = "jobplane.io"

__all__ = ["GROUP"]

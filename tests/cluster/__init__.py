"""The local Kubernetes cluster the e2e tests run against: build helpers, start/stop, pytest fixtures."""

from __future__ import annotations

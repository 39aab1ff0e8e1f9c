"""A job's effective metadata: the admin's overrides over what the code declares, field by field."""

from __future__ import annotations

from jobplane_crds.v1alpha1.jobdefinition import effective_metadata


def test_effective_metadata_ignores_unset_overrides() -> None:
    code = {"name": "A", "hidden": False}
    assert effective_metadata(code, {"name": None, "hidden": True}) == {
        **dict.fromkeys(effective_metadata(code, None)),
        "name": "A",
        "hidden": True,
    }

"""Renders the CRD YAML from the pydantic models: structural schemas, descriptions, columns, CEL rules.

python -m jobplane_crds.render            # write crds/*.yaml and the chart's templates/crds-*.yaml
python -m jobplane_crds.render --check    # exit 1 when the committed YAML (either copy) differs
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path
from typing import Any, cast

import yaml
from pydantic import BaseModel

from jobplane_crds import GROUP
from jobplane_crds.v1alpha1 import KINDS, VERSION
from jobplane_crds.v1alpha1.common import Resource

__all__ = ["chart_template", "crd_manifest", "render_all", "render_chart", "structural_schema"]

CRDS_DIR = Path(__file__).resolve().parent.parent
# The Helm chart's copy: templates, so that `crds.enabled` gates them and `crds.keep` keeps them.
CHART_CRDS_DIR = CRDS_DIR.parent / "charts" / "jobplane" / "templates"
# Keywords of pydantic's JSON Schema that a CRD schema does not take.
DROPPED = {"title", "$schema"}


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" not in node:
        return node
    target = defs[node["$ref"].rsplit("/", 1)[-1]]
    siblings = {k: v for k, v in node.items() if k != "$ref"}
    return {**target, **siblings}


def _convert(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    node = _resolve(node, defs)
    if "anyOf" in node:
        variants = [_resolve(v, defs) for v in node["anyOf"] if v.get("type") != "null"]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if rest.get("default", "absent") is None:
            del rest["default"]
        kinds = sorted(v.get("type", "") for v in variants)
        if kinds == ["integer", "string"]:
            return {**{k: v for k, v in rest.items() if k not in DROPPED}, "x-kubernetes-int-or-string": True}
        if len(variants) != 1:
            raise ValueError(f"cannot express anyOf {node['anyOf']!r} in a structural schema")
        return _convert({**variants[0], **rest}, defs)

    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in DROPPED or (key == "default" and value is None):
            continue
        if key == "properties":
            out[key] = {name: _convert(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out[key] = _convert(value, defs)
        elif key == "additionalProperties":
            if value is True:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif isinstance(value, dict):
                out[key] = _convert(value, defs)
        elif key == "const":
            out["enum"] = [value]
        elif key == "description":
            out[key] = " ".join(value.split())  # docstrings wrap; kubectl explain re-wraps
        else:
            out[key] = value
    if not node:  # typing.Any
        out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON Schema as a Kubernetes structural schema (refs inlined, nulls dropped)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _convert(raw, defs)


def _doc(cls: type) -> str:
    return inspect.cleandoc(cls.__doc__ or "")


def crd_manifest(kind: type[Resource]) -> dict[str, Any]:
    """The CustomResourceDefinition of one kind."""
    fields = kind.model_fields
    properties: dict[str, Any] = {
        "apiVersion": {"type": "string", "description": "jobplane.io/v1alpha1"},
        "kind": {"type": "string", "description": kind.kind_name},
        "metadata": {"type": "object"},
    }
    required = []
    for name in ("spec", "status"):
        annotation = fields[name].annotation
        model = cast(
            "type[BaseModel]",
            next(arg for arg in getattr(annotation, "__args__", (annotation,)) if arg is not type(None)),
        )
        schema = structural_schema(model)
        schema["description"] = _doc(model)
        if name == "spec":
            if fields[name].is_required():
                required.append("spec")
            else:
                schema.setdefault("default", {})  # a manifest may leave out a spec whose fields all default
        properties[name] = schema
    open_api: dict[str, Any] = {"type": "object", "description": _doc(kind), "properties": properties}
    if required:
        open_api["required"] = required
    if kind.root_validations:
        open_api["x-kubernetes-validations"] = [dict(rule) for rule in kind.root_validations]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{kind.plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind.kind_name,
                "listKind": f"{kind.kind_name}List",
                "plural": kind.plural,
                "singular": kind.kind_name.lower(),
                "shortNames": list(kind.short_names),
                "categories": ["jobplane"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": open_api},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [column.render() for column in kind.printer_columns],
                }
            ],
        },
    }


def _yaml(manifest: dict[str, Any]) -> str:
    header = "# Generated by `python -m jobplane_crds.render` from crds/jobplane_crds; do not edit.\n"
    return header + yaml.safe_dump(manifest, sort_keys=False, width=100, allow_unicode=True)


def render_all() -> dict[str, str]:
    """File name → YAML text for every kind."""
    return {f"{GROUP}_{kind.plural}.yaml": _yaml(crd_manifest(kind)) for kind in KINDS}


def chart_template(manifest: dict[str, Any]) -> str:
    """One CRD as a Helm template: rendered when `crds.enabled`, kept on uninstall when `crds.keep`."""
    body = yaml.safe_dump(manifest["spec"], sort_keys=False, width=100, allow_unicode=True)
    if "{{" in body or "}}" in body:
        raise ValueError(f"{manifest['metadata']['name']}: a description holds Helm template delimiters")
    return (
        "{{- /* Generated by `python -m jobplane_crds.render` from crds/jobplane_crds; do not edit. */ -}}\n"
        "{{- if .Values.crds.enabled }}\n"
        f"apiVersion: {manifest['apiVersion']}\n"
        f"kind: {manifest['kind']}\n"
        "metadata:\n"
        f"  name: {manifest['metadata']['name']}\n"
        "  labels:\n"
        '    {{- include "jobplane.labels" . | nindent 4 }}\n'
        "    app.kubernetes.io/component: crds\n"
        "  {{- if .Values.crds.keep }}\n"
        "  annotations:\n"
        "    helm.sh/resource-policy: keep\n"
        "  {{- end }}\n"
        "spec:\n" + "".join(f"  {line}\n" if line else "\n" for line in body.splitlines()) + "{{- end }}\n"
    )


def render_chart() -> dict[str, str]:
    """File name → Helm template text for every kind (the chart's templates/crds-<plural>.yaml)."""
    return {f"crds-{kind.plural}.yaml": chart_template(crd_manifest(kind)) for kind in KINDS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render the jobplane.io CRDs.")
    parser.add_argument("--check", action="store_true", help="fail when the committed files differ")
    parser.add_argument("--out", type=Path, default=CRDS_DIR)
    parser.add_argument("--chart-out", type=Path, default=CHART_CRDS_DIR, help="the chart's templates")
    args = parser.parse_args(argv)
    stale = []
    outputs = [(args.out, render_all()), (args.chart_out, render_chart())]
    for directory, files in outputs:
        for name, text in files.items():
            path = directory / name
            if args.check:
                if not path.exists() or path.read_text(encoding="utf-8") != text:
                    stale.append(str(path))
            else:
                directory.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
    if stale:
        print(f"out of date: {', '.join(stale)}; run python -m jobplane_crds.render", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

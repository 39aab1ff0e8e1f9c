"""The chart's CRD templates are the generator's output, gated by crds.enabled and kept on uninstall."""

from __future__ import annotations

from jobplane_crds.render import CHART_CRDS_DIR, render_chart


def test_chart_crd_templates_match_the_generator() -> None:
    rendered = render_chart()
    committed = {path.name: path.read_text(encoding="utf-8") for path in CHART_CRDS_DIR.glob("crds-*.yaml")}
    assert set(committed) == set(rendered), "run python -m jobplane_crds.render"
    for name, text in rendered.items():
        assert committed[name] == text, f"{name} drifted: run python -m jobplane_crds.render"


def test_chart_crd_templates_are_gated_and_kept() -> None:
    for text in render_chart().values():
        assert "{{- if .Values.crds.enabled }}" in text
        assert "helm.sh/resource-policy: keep" in text
        assert text.rstrip().endswith("{{- end }}")

"""The documentation that the code generates or must match: every setting's variable is in the
settings table of docs/kubernetes.md, and docs/service-metrics.md is the metrics' own table."""

from __future__ import annotations

from pathlib import Path

from inferno.services.metrics import markdown_table
from inferno.settings import variables

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_variable_is_documented() -> None:
    text = (DOCS / "kubernetes.md").read_text(encoding="utf-8")
    missing = [env for _, _, env, _, _ in variables() if f"`{env}`" not in text]
    assert missing == [], f"variables missing from docs/kubernetes.md: {missing}"


def test_the_metrics_table_is_generated_from_the_code() -> None:
    text = (DOCS / "service-metrics.md").read_text(encoding="utf-8")
    assert text.endswith(markdown_table()), "regenerate docs/service-metrics.md (see its header)"

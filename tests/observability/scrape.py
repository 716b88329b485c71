"""Metric names as Prometheus sees them: from a scrape's text, or from a registry."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families


def names_in(exposition: str) -> set[str]:
    """Every family and sample name in a text exposition (`x_total`, `x_bucket`, `x_count`...)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(sample.name for sample in family.samples)
        if family.samples:
            continue
        # Declared, no sample yet (a labelled series nobody has touched): the names it will have.
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type in ("histogram", "summary"):
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return names


def registry_names(registries: Iterable[CollectorRegistry]) -> set[str]:
    names: set[str] = set()
    for registry in registries:
        names |= names_in(generate_latest(registry).decode())
    return names


def sample(exposition: str, name: str, **labels: str) -> float | None:
    """The value of one sample (labels must match those given), or None."""
    for family in text_string_to_metric_families(exposition):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None

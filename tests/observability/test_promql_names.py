"""The PromQL name reader the dashboard and rule checks rest on."""

from __future__ import annotations

from tests.observability.promql import metric_names, missing


def test_reads_selectors_not_functions_labels_or_groupings() -> None:
    names = metric_names(
        'histogram_quantile(0.95, sum by (le, status) (rate(bookme_x_bucket{route="/a", '
        'status=~"5.."}[5m]))) / on() group_left() max(bookme_y) > 1e18 and bool up offset 5m'
    )
    assert names.exact == {"bookme_x_bucket", "bookme_y", "up"}
    assert names.patterns == set()


def test_name_matchers_are_patterns_and_strings_are_ignored() -> None:
    names = metric_names(
        'label_replace({__name__=~"bookme_invariant_.+_violations"}, "invariant", "$1", '
        '"__name__", "bookme_invariant_(.+)_violations") > 0'
    )
    assert names.exact == set()
    assert names.patterns == {"bookme_invariant_.+_violations"}


def test_missing_names_each_unknown_name_and_unmatched_pattern() -> None:
    exported = {"bookme_a", "bookme_invariant_x_violations"}
    assert missing(['sum(bookme_a) + {__name__=~"bookme_invariant_.+"}'], exported) == []
    problems = missing(['bookme_a + bookme_b + {__name__=~"nothing_.*"}'], exported)
    assert len(problems) == 2
    assert problems[0].startswith("bookme_b")
    assert missing(["up == 0"], exported, builtin=frozenset({"up"})) == []

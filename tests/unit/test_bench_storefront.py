"""The storefront benchmark's goals (``bench/storefront.py``, issue 13): each figure that misses
its goal is named, and only those."""

from __future__ import annotations

from collections import Counter

from bench.storefront import MAX_HTML_KB, Figures, breakdown, failures

RUNS = 4


def figures(
    name: str,
    per_view: dict[tuple[str, str], int],
    ms: float,
    size: int = 10_000,
    *,
    catalogue: bool = False,
    html: bool = True,
) -> Figures:
    return Figures(
        name,
        "/path",
        catalogue=catalogue,
        html=html,
        status=200,
        size=size,
        runs=RUNS,
        requests=Counter({site: n * RUNS for site, n in per_view.items()}),
        seconds=[ms / 1000] * RUNS,
    )


CATALOGUE = {
    ("GetItem", "storefronts"): 1,
    ("Query", "prices"): 1,
    ("BatchGetItem", "products"): 1,
}
BASELINE = figures("GET /products", CATALOGUE, 100.0, 30_000, html=False)


def test_a_page_within_every_goal_passes() -> None:
    page = figures("catalogue", CATALOGUE, 150.0, MAX_HTML_KB * 1024, catalogue=True)
    assert failures([page], BASELINE) == []


def test_the_catalogue_request_goals() -> None:
    heavy = {**CATALOGUE, ("Query", "prices"): 2, ("Query", "subscriptions.by_account"): 1}
    heavy[("BatchGetItem", "products")] = 2
    missed = failures([figures("catalogue", heavy, 100.0, catalogue=True)], BASELINE)
    assert len(missed) == 2
    assert "3 Query per view > 2" in missed[0]
    assert "2 BatchGetItem per view > 1" in missed[1]
    # other pages may query more: only the catalogue has those two goals
    assert failures([figures("subscriptions", heavy, 100.0)], BASELINE) == []


def test_a_scan_size_time_or_status_is_named() -> None:
    page = figures("subscriptions", {("Scan", "subscriptions"): 1}, 151.0, 60 * 1024 + 1)
    page.status = 500
    missed = failures([page], BASELINE)
    assert [m.split(":")[1].split()[0] for m in missed] == ["status", "1", "HTML", "median"]
    assert "1.51 ×" in missed[3]


def test_the_baselines_json_has_no_size_goal() -> None:
    baseline = figures("GET /products", CATALOGUE, 100.0, 200_000, html=False)
    assert failures([], baseline) == []


def test_per_view_and_breakdown() -> None:
    page = figures("catalogue", CATALOGUE, 1.0)
    assert page.per_view() == Counter(CATALOGUE)
    assert page.operations() == Counter({"GetItem": 1, "Query": 1, "BatchGetItem": 1})
    assert breakdown(page.per_view()) == (
        "BatchGetItem products 1, GetItem storefronts 1, Query prices 1"
    )
    assert breakdown(Counter()) == "none"

"""R33: what a reconciliation run makes of a child's record and its mirror, and how a run moves
through its pages, with no I/O."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from functions.backorder import domain
from functions.backorder.domain import Drift
from functions.core.domain import Account
from tests.unit.test_backorder_domain import E3, LINK, NOW, SUB

MIRROR = domain.mirror_subscription(LINK, SUB, E3, unit_price=Decimal("23.50"), now=NOW)

#: for each synced field, a value the source does not hold
OTHER: dict[str, Any] = {
    "status": "suspended",
    "start_date": "2026-10-01",
    "end_date": "2026-12-31",
    "activation_date": "2026-11-02",
    "cancellation_date": "2026-11-20",
    "auto_renew": False,
    "product_id": "prd_other",
    "billing_cycle": "annual",
    "quantity": 11,
    "term": "annual",
    "terms": 2,
    "characteristics": {"domain": "elsewhere.example"},
}
FIELDS = st.sets(st.sampled_from(domain.SYNCED_SUBSCRIPTION_FIELDS))


def test_r33_a_mirror_in_step_with_its_source_is_no_drift() -> None:
    assert set(OTHER) == set(domain.SYNCED_SUBSCRIPTION_FIELDS)
    assert domain.subscription_drift(LINK, SUB, MIRROR) is None
    # pricing, ids, dates of the mirror's own writes are not compared (R13: not copied)
    own = replace(MIRROR, unit_price=Decimal("1.00"), updated_at="2027-01-01T00:00:00Z")
    assert domain.subscription_drift(LINK, SUB, own) is None


@given(FIELDS)
def test_r33_a_field_changed_behind_the_replicator_is_a_mismatch_naming_it(
    changed: set[str],
) -> None:
    mirror = replace(MIRROR, **{name: OTHER[name] for name in changed})
    drift = domain.subscription_drift(LINK, SUB, mirror)
    if not changed:
        assert drift is None
    else:
        assert drift == Drift(
            domain.MISMATCH,
            tuple(f for f in domain.SYNCED_SUBSCRIPTION_FIELDS if f in changed),
        )


@given(FIELDS, st.integers(0, 2))
def test_r33_an_older_source_version_is_stale_a_newer_one_a_mismatch(
    changed: set[str], mirrored_at: int
) -> None:
    """The source is at version 3; the mirror holds ``mirrored_at`` (stale) or 4 (ahead of
    its source: a restore, named ``source_version``)."""
    mirror = replace(MIRROR, source_version=mirrored_at, **{n: OTHER[n] for n in changed})
    drift = domain.subscription_drift(LINK, SUB, mirror)
    named = tuple(f for f in domain.SYNCED_SUBSCRIPTION_FIELDS if f in changed)
    assert drift == Drift(domain.STALE, named)
    ahead = domain.subscription_drift(LINK, SUB, replace(mirror, source_version=4))
    assert ahead == Drift(domain.MISMATCH, ("source_version", *named))


def test_r33_missing_and_orphan() -> None:
    assert domain.subscription_drift(LINK, SUB, None) == Drift(domain.MISSING)
    # nothing is expected of a record that is not mirrored (R13), or of nothing at all
    free = replace(SUB, paid_once=False, unit_price=Decimal(0))
    own = replace(SUB, origin_tenant_id=None, origin_product_id=None)
    for record in (free, own, None):
        assert domain.subscription_drift(LINK, record, None) is None
    assert domain.subscription_drift(LINK, None, MIRROR) == Drift(domain.ORPHAN)
    closed = domain.orphan_closed(MIRROR, today="2026-12-05", now=NOW)
    assert (closed.status, closed.last_change) == ("cancelled", domain.ORPHANED)
    assert closed.cancellation_date == "2026-12-05" and closed.history == MIRROR.history
    assert domain.subscription_drift(LINK, None, closed) is None  # repaired: not found again


ACCOUNT = Account(
    id="acc_x",
    tenant_id="tnt_child",
    name="X",
    kind="customer",
    currency="EUR",
    created_at=NOW,
    email="x@example.com",
    accounting_number="A-1",
    version=2,
)
ACCOUNT_MIRROR = domain.mirror_account(LINK, ACCOUNT, parent_mirror_id=None, created_at=NOW)


@given(st.sets(st.sampled_from(domain.SYNCED_ACCOUNT_FIELDS)), st.integers(0, 3))
def test_r33_accounts_stale_mismatch_missing(changed: set[str], mirrored_at: int) -> None:
    values = {"name": "Y", "email": "y@example.com", "accounting_number": "B-2", "address": None}
    values["address"] = {"line1": "Elsewhere 1"}
    mirror = replace(ACCOUNT_MIRROR, source_version=mirrored_at, **{n: values[n] for n in changed})
    named = tuple(f for f in domain.SYNCED_ACCOUNT_FIELDS if f in changed)
    drift = domain.account_drift(ACCOUNT, mirror, expected=True)
    if mirrored_at < 2:
        assert drift == Drift(domain.STALE, named)
    elif mirrored_at > 2:
        assert drift == Drift(domain.MISMATCH, ("source_version", *named))
    else:
        assert drift == (Drift(domain.MISMATCH, named) if named else None)
    assert domain.account_drift(ACCOUNT, None, expected=True) == Drift(domain.MISSING)
    assert domain.account_drift(ACCOUNT, None, expected=False) is None


def test_r33_a_repair_order_is_the_same_order_marked() -> None:
    """A lost change's order made by a repair has the id the stream path would have given it
    (so whoever comes first makes it, once), marked as the run's repair."""
    plain = domain.provider_order(LINK, SUB, MIRROR, E3, now=NOW)
    repaired = domain.provider_order(LINK, SUB, MIRROR, E3, now=NOW, repair="rec_1")
    assert repaired.id == plain.id and repaired.number == plain.number
    assert (plain.created_by, repaired.created_by) == ("back-ordering", "reconciliation")
    assert repaired.source == {**(plain.source or {}), "repair_run_id": "rec_1"}


RUN = domain.ReconciliationRun(
    tenant_id="tnt_prov",
    id="rec_1",
    child_tenant_id="tnt_child",
    provider_tenant_id="tnt_prov",
    started_by="api",
    status=domain.RUN_QUEUED,
    created_at=NOW,
    updated_at=NOW,
)


@given(st.lists(st.integers(1, 3), min_size=3, max_size=3))
def test_r33_a_run_moves_page_by_page_through_its_phases(pages: list[int]) -> None:
    """Each phase has ``pages[i]`` pages; a duplicate message of a page done is a no-op, the
    retry of a page whose next message was not sent re-sends it; counts add up once."""
    run = RUN
    total = 0
    for phase, n in zip(domain.PHASES, pages, strict=True):
        for page in range(n):
            assert run.phase == phase and run.expects(phase, run.cursor)
            last = page == n - 1
            done = run.advanced(
                None if last else f"c{page}", compared=10, found={"stale": 1}, now=NOW
            )
            total += 1
            assert done.resends_after(phase, run.cursor) == (not done.finished)
            assert not done.expects(phase, run.cursor)  # the page is done: a duplicate
            run = replace(done, sent=True)
            assert not run.resends_after(phase, run.cursor)
    assert run.phase == domain.DONE and run.status == domain.DONE and run.finished_at == NOW
    assert run.counts == {"stale": total} and run.pages == total
    assert run.compared == {p: 10 * n for p, n in zip(domain.PHASES, pages, strict=True)}
    repairing = run.repairing(NOW)
    assert repairing.expects(domain.REPAIR, None) and repairing.status == domain.REPAIR
    repaired = repairing.advanced(None, compared=5, found={}, now=NOW, repaired=4, repair_orders=2)
    assert (repaired.phase, repaired.status) == (domain.REPAIRED, domain.REPAIRED)
    assert (repaired.repaired, repaired.repair_orders, repaired.finished) == (4, 2, True)


def test_r33_the_schedules_run_is_one_per_child_and_day() -> None:
    first = domain.reconciliation_run_id("tnt_prov", "tnt_child", "2026-12-05")
    assert first == domain.reconciliation_run_id("tnt_prov", "tnt_child", "2026-12-05")
    assert first != domain.reconciliation_run_id("tnt_prov", "tnt_child", "2026-12-06")
    assert first.startswith("rec_")

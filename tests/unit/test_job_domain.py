"""A paged job (the R11 backfill): which message runs, which is a duplicate, which repairs a
crash between saving a page and queueing the next."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from functions.core.domain import JOB_DONE, JOB_QUEUED, JOB_RUNNING, Job

NEW = Job(
    tenant_id="t",
    id="j",
    kind="backfill",
    subject="c",
    as_of="2026-11-22",
    status=JOB_QUEUED,
    created_at="2026-11-22T00:00:00Z",
    updated_at="2026-11-22T00:00:00Z",
)


def test_r11_a_new_job_runs_its_first_page_only() -> None:
    assert NEW.expects(None) and not NEW.expects("c1")
    assert not NEW.resends_after(None)  # nothing was done yet: nothing to repair


def test_r11_after_a_page_the_next_runs_and_the_old_message_repairs_only_an_unsent_next() -> None:
    after = NEW.advanced("c1", processed=100, applied=7, now="2026-11-22T00:01:00Z")
    assert (after.status, after.pages, after.processed, after.applied) == (JOB_RUNNING, 1, 100, 7)
    assert after.expects("c1") and not after.expects(None)
    assert after.resends_after(None)  # saved, but the next message was not sent yet
    sent = after.__class__(**{**after.__dict__, "next_sent": True})
    assert not sent.resends_after(None)  # a plain duplicate


def test_r11_the_last_page_finishes_the_job_and_nothing_runs_after() -> None:
    done = NEW.advanced(None, processed=3, applied=3, now="2026-11-22T00:01:00Z")
    assert (done.status, done.finished_at) == (JOB_DONE, "2026-11-22T00:01:00Z")
    assert not done.expects(None) and not done.resends_after(None)


@given(st.lists(st.tuples(st.integers(0, 100), st.integers(0, 100)), min_size=1, max_size=30))
def test_r11_counts_add_up_over_any_number_of_pages(pages: list[tuple[int, int]]) -> None:
    job = NEW
    for number, (processed, applied) in enumerate(pages, start=1):
        last = number == len(pages)
        job = job.advanced(None if last else f"c{number}", processed, min(applied, processed), "t")
    assert job.status == JOB_DONE and job.pages == len(pages)
    assert job.processed == sum(p for p, _ in pages)
    assert job.applied == sum(min(a, p) for p, a in pages)

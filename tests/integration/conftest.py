"""Fixtures of the integration suites."""

from __future__ import annotations

import fcntl
import os
import pickle
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.conftest import Api
from tests.integration.tiers import Clock

if TYPE_CHECKING:
    from infra.package import Package


@pytest.fixture
def billing(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Api, Clock]]:
    import boto3

    from functions import composition
    from local.billing import InlineLauncher

    settings = composition.container().settings
    boto3.client("s3").create_bucket(Bucket=settings.documents_bucket)
    boto3.client("ses").verify_email_identity(EmailAddress=settings.mail_from)
    service = composition.container().billing
    launcher = InlineLauncher(lambda: service)
    monkeypatch.setattr(service, "launcher", lambda: launcher)
    yield api, Clock(monkeypatch)


@pytest.fixture(scope="session")
def package(tmp_path_factory: pytest.TempPathFactory) -> Package:
    """The deployment package (``python -m infra.package``), built once per test run for
    ``test_package.py`` and ``test_deploy.py``: under pytest-xdist the first worker to ask builds
    it under a lock in the run's temporary directory and the others load it (a build takes about
    a minute, and two ``chalice package`` in one repository at once would share its caches).
    A failed build fails every worker's tests with its error, without building again."""
    from infra.package import PackageError, build

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # this run's, shared by its workers
    built = root / "package.pickle"
    with (root / "package.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if not built.exists():
            outcome: Package | PackageError
            try:
                outcome = build(root / "package" / "out")
            except PackageError as error:
                outcome = error
            built.write_bytes(pickle.dumps(outcome))
        outcome = pickle.loads(built.read_bytes())
    if isinstance(outcome, PackageError):
        raise outcome
    return outcome

"""Fixtures of the integration suites."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Api
from tests.integration.tiers import Clock


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

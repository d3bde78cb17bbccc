"""Shared fixtures: an in-process moto DynamoDB with every table, the Chalice test client, and
tokens per role."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest

SECRET = "test-secret-0123456789abcdef-0123456789"

TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",  # moto 5.2.5 + botocore ≥ 1.44.4 (NOTES-stack)
    "BSS_TABLE_PREFIX": "test",
    "BSS_JWT_SECRET": SECRET,
    "BSS_AWS_ENDPOINT": "",
    "BSS_BILLING_STATE_MACHINE": (
        "arn:aws:states:us-east-1:123456789012:stateMachine:test-billing-run"
    ),
    "BSS_DOCUMENTS_BUCKET": "test-documents",
    "BSS_MAIL_FROM": "billing@bss.test",
    "BSS_PUBLIC_URL": "http://bss.test",
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Moto in-process, with every BSS table and queue (``infra/events.py``)."""
    from moto import mock_aws

    from functions import composition
    from functions.core.persistence import create_tables
    from local import moto_guard

    for name, value in TEST_ENV.items():
        monkeypatch.setenv(name, value)
    moto_guard.install()  # a cancelled transaction undoes its own writes only, as on AWS
    with mock_aws():
        composition.reset()
        composition.container()  # binds the models
        create_tables(composition.models())
        create_queues()
        billing_in_process()
        yield
        composition.reset()


def billing_in_process() -> None:
    """The documents bucket, the mail sender (SES), and billing runs started by ``POST
    /billing-runs`` run at once in-process (``local.billing``): the state machine itself runs
    on moto in ``tests/integration/test_billing_stepfunctions.py``."""
    import boto3

    from functions import composition
    from local.billing import InlineLauncher

    container = composition.container()
    boto3.client("s3").create_bucket(Bucket=container.settings.documents_bucket)
    boto3.client("ses").verify_email_identity(EmailAddress=container.settings.mail_from)
    launcher = InlineLauncher(lambda: container.billing)
    container.billing.launcher = lambda: launcher


def create_queues() -> None:
    """Every queue of ``infra/events.py`` as the merge template declares it (redrive included),
    named as the app finds it."""
    import boto3

    from functions import composition
    from local.runner import create_queues as create

    create(boto3.client("sqs"), composition.container().settings.table_prefix)


class Api:
    """The Chalice test client with JSON in and out."""

    def __init__(self) -> None:
        from chalice.test import Client

        from app import app

        self._client_cm = Client(app)
        self.client = self._client_cm.__enter__()

    def close(self) -> None:
        self._client_cm.__exit__(None, None, None)

    def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: str | None = None,
    ) -> tuple[int, Any]:
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        payload = raw if raw is not None else (json.dumps(body) if body is not None else None)
        response = self.client.http.request(method, path, headers=hdrs, body=payload or b"")
        text = response.body.decode() if response.body else ""
        return response.status_code, (json.loads(text) if text else None)


def token(
    role: str, tenant_id: str | None = None, account_id: str | None = None, **extra: Any
) -> str:
    from functions.core.auth import issue_token

    return issue_token(
        SECRET, sub=f"{role}-user", role=role, tenant_id=tenant_id, account_id=account_id, **extra
    )


@pytest.fixture
def api(aws: None) -> Iterator[Api]:
    client = Api()
    yield client
    client.close()


#: DynamoDB's write operations: what ``writes()`` counts when they succeed
_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
#: the app's writes by client: (client, [successful writes to its business tables])
_metered: list[tuple[Any, list[int]]] = []


def writes() -> int:
    """How many writes to its tables the app has made so far: a request meter on the app's one
    DynamoDB client (``functions.core.persistence.connection``), so checking that a refused
    request wrote nothing costs no Scan. An ``Idempotency-Key``'s claim and release are left
    out (a refused request takes its key and gives it back); a write whose condition failed, or
    a cancelled transaction, wrote nothing and is not counted."""
    from functions import composition
    from functions.core.persistence import connection

    settings = composition.container().settings
    client = connection(settings).client
    for metered, count in _metered:
        if metered is client:
            return count[0]
    count = [0]
    idempotency = settings.table_prefix + "-idempotency"

    def tables(params: dict[str, Any]) -> set[str]:
        if "TableName" in params:
            return {params["TableName"]}
        if "RequestItems" in params:
            return set(params["RequestItems"])
        return {
            request["TableName"]
            for item in params.get("TransactItems", [])
            for request in item.values()
        }

    def before(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if model.name in _WRITES:
            context["bss_write"] = bool(tables(params) - {idempotency})

    def after(http_response: Any, model: Any, context: dict[str, Any], **_: Any) -> None:
        if context.get("bss_write") and http_response.status_code < 300:
            count[0] += 1

    client.meta.events.register("before-parameter-build.dynamodb", before)
    client.meta.events.register("after-call.dynamodb", after)
    _metered[:] = [(client, count)]  # one app client at a time (each test binds anew)
    return 0


def table_counts() -> dict[str, int]:
    """Items per table (a Scan: tests only, never a request path). To check that nothing was
    written, ``writes()`` is the cheaper meter."""
    from functions import composition

    return {m.base_name: m.count() for m in composition.models()}


# Hypothesis profiles: HYPOTHESIS_PROFILE names the one to load (else Hypothesis' own choice);
# ``chaos`` (``make chaos``) runs the model-based back-ordering test at length.
hypothesis.settings.register_profile(
    "chaos",
    max_examples=2_000,
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow],
)
if os.environ.get("HYPOTHESIS_PROFILE"):
    hypothesis.settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])
os.environ.setdefault("HYPOTHESIS_PROFILE", "default")


#: The files that take longest, longest first (summed from ``pytest --junitxml``; measured on 2
#: cores): ``make test`` runs files in parallel processes (pytest-xdist, ``--dist loadfile``),
#: which take files in collection order (``--no-loadscope-reorder`` in the Makefile: xdist would
#: otherwise order files by their number of tests, and the long files of one or two tests ran
#: last, each alone), so these start first and no long file is left running alone at the end.
SLOW_FILES = (
    "tests/integration/test_backorder_convergence.py",  # 271 s
    "tests/e2e/test_local_platform.py",  # 180 s
    "tests/api/test_schemathesis.py",  # 180 s
    "tests/integration/test_propagation_scale.py",  # 170 s
    "tests/integration/test_reconciliation.py",  # 150 s
    "tests/api/test_input_bounds.py",  # 106 s
    "tests/integration/test_commitments.py",  # 78 s
    "tests/integration/test_simulation.py",  # 75 s
    "tests/integration/test_billing.py",  # 74 s
    "tests/integration/test_margin.py",  # 65 s
    "tests/integration/test_package.py",  # 51 s, most of it the build of the package
    # after test_package.py, whose build of the package (shared, ``package`` of
    # tests/integration/conftest.py) it then finds made rather than waits for
    "tests/integration/test_deploy.py",  # 45 s
    "tests/e2e/test_restart.py",  # 51 s
    "tests/api/test_storefront.py",  # 50 s
    "tests/integration/test_backorder.py",  # 49 s
    "tests/browser/test_storefront_journeys.py",  # 49 s
    "tests/browser/test_browser_smoke.py",  # 38 s
    "tests/e2e/test_soak.py",  # 36 s
    "tests/integration/test_propagation.py",  # 31 s
    "tests/integration/test_runner.py",  # 27 s
    "tests/api/test_bad_input.py",  # 25 s
    "tests/integration/test_upgrade.py",  # 24 s
    "tests/api/test_cross_tenant.py",  # 22 s
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return SLOW_FILES.index(path) if path in SLOW_FILES else len(SLOW_FILES)

    items.sort(key=rank)  # stable: each file's tests keep their order

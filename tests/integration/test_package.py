"""The deployment package (``python -m infra.package``): the merge template matches the models, the
function zip carries ``functions/`` and the layer the dependencies, both with bytecode, and they
run on their own as Lambda lays them out; the template lints and
translates, and every asynchronous path of ``infra/events.py`` is wired in the CloudFormation that
deploys: its queue, its event source mapping with the declared delivery settings, its on-failure
or dead-letter queue, and no more IAM than its function needs. The packaging tests share one build
per test run with ``test_deploy.py`` (the ``package`` fixture of ``conftest.py``; chalice
package downloads the manylinux wheels from PyPI the first time; later runs use
``.chalice/deployments``)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from infra.package import Package

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"


def test_committed_merge_template_is_generated_from_the_models() -> None:
    from infra import template

    assert template.TEMPLATE.read_text() == template.render(template.build()), (
        "infra/template.json is stale: run `python -m infra.template` and commit it"
    )


def test_merge_template_has_a_table_per_model_and_streams_where_asked() -> None:
    from functions.composition import models
    from infra import template

    resources = template.build()["Resources"]
    for model in models():
        table = resources[template.logical_id(model)]
        assert table["Type"] == "AWS::DynamoDB::Table"
        assert table["Properties"]["TableName"] == {
            "Fn::Sub": f"${{AWS::StackName}}-{model.base_name}"
        }
        stream = table["Properties"].get("StreamSpecification")
        assert stream == ({"StreamViewType": "NEW_AND_OLD_IMAGES"} if model.streamed else None)


def test_a_stream_source_needs_a_streamed_model() -> None:
    from functions.composition import models
    from infra import template
    from infra.events import StreamSource

    unstreamed = next(m for m in models() if not m.streamed)
    for table, problem in ((unstreamed.base_name, "has no stream"), ("nope", "no such model")):
        with pytest.raises(ValueError, match=problem):
            template.check_sources(models(), [StreamSource(function="f", table=table)])


def test_billing_run_state_machine_is_the_definition_file_with_every_task_substituted() -> None:
    """The same file as ``local/stepfunctions.py`` runs; every placeholder filled with the ARN of
    the Chalice function of that name, and the state machine's role invokes exactly those."""
    from infra import billing, template

    resources = template.build()["Resources"]
    machine = resources[template.STATE_MACHINE_ID]
    assert machine["Type"] == "AWS::StepFunctions::StateMachine"
    props = machine["Properties"]
    assert props["StateMachineName"] == {"Fn::Sub": "${AWS::StackName}-billing-run"}
    assert props["DefinitionString"] == billing.DEFINITION_FILE.read_text()
    placeholders = billing.placeholders(props["DefinitionString"])
    assert placeholders and set(props["DefinitionSubstitutions"]) == placeholders
    ordered = sorted(placeholders)
    arns = [{"Fn::GetAtt": [template.function_id(billing.TASKS[p]), "Arn"]} for p in ordered]
    assert [props["DefinitionSubstitutions"][p] for p in ordered] == arns
    assert props["RoleArn"] == {"Fn::GetAtt": [template.STATE_MACHINE_ROLE, "Arn"]}

    role = resources[template.STATE_MACHINE_ROLE]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "states.amazonaws.com"}
    (statement,) = [
        statement
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    assert statement["Action"] == ["lambda:InvokeFunction"]
    assert sorted(statement["Resource"], key=json.dumps) == sorted(arns, key=json.dumps)


def test_billing_schedule_rule_and_documents_bucket() -> None:
    from infra import billing, template

    resources = template.build()["Resources"]
    schedule = template.function_id(billing.SCHEDULE_FUNCTION)
    rule = resources[template.SCHEDULE_RULE]
    assert rule["Type"] == "AWS::Events::Rule"
    assert rule["Properties"]["ScheduleExpression"] == "cron(15 0 * * ? *)"
    assert rule["Properties"]["State"] == "ENABLED"
    assert [t["Arn"] for t in rule["Properties"]["Targets"]] == [{"Fn::GetAtt": [schedule, "Arn"]}]
    permission = resources[template.SCHEDULE_PERMISSION]
    assert permission["Type"] == "AWS::Lambda::Permission"
    assert permission["Properties"] == {
        "Action": "lambda:InvokeFunction",
        "FunctionName": {"Ref": schedule},
        "Principal": "events.amazonaws.com",
        "SourceArn": {"Fn::GetAtt": [template.SCHEDULE_RULE, "Arn"]},
    }
    bucket = resources[template.DOCUMENTS_BUCKET]
    assert bucket["Type"] == "AWS::S3::Bucket" and bucket["DeletionPolicy"] == "Retain"
    assert all(bucket["Properties"]["PublicAccessBlockConfiguration"].values())


def test_every_function_gets_the_billing_environment() -> None:
    from infra import template

    built = template.build()
    variables = built["Globals"]["Function"]["Environment"]["Variables"]
    assert variables == {
        "BSS_TABLE_PREFIX": {"Ref": "AWS::StackName"},
        "BSS_JWT_SECRET": {"Ref": "JwtSecret"},
        "BSS_BILLING_STATE_MACHINE": template.state_machine_arn(),
        "BSS_DOCUMENTS_BUCKET": {"Ref": template.DOCUMENTS_BUCKET},
        "BSS_MAIL_FROM": {"Ref": "MailFrom"},
        "BSS_PUBLIC_URL": {"Ref": "PublicUrl"},
    }
    # the ARN is the state machine's own: built from the same name (a Ref would be circular)
    name = built["Resources"][template.STATE_MACHINE_ID]["Properties"]["StateMachineName"]
    assert template.state_machine_arn()["Fn::Sub"].endswith(":stateMachine:" + name["Fn::Sub"])
    assert {"JwtSecret", "MailFrom", "PublicUrl"} <= set(built["Parameters"])


def test_queue_consumers_time_out_well_within_the_visibility_timeout() -> None:
    from infra import events, template

    for source in events.QUEUES:
        timeout = template.consumer_timeout(source.function, events.QUEUES)
        assert 6 * timeout <= source.visibility_timeout_s


def _pyc_check(archive: zipfile.ZipFile) -> list[str]:
    names = set(archive.namelist())
    sources = [n for n in names if n.endswith(".py")]
    return [n for n in sources if importlib.util.cache_from_source(n) not in names]


@pytest.mark.package
def test_function_zip_holds_the_app_and_the_layer_its_dependencies(package: Package) -> None:
    """Issue 16: the function zip is the app (≤ 10 MB); the dependencies are in the layer, without
    what the Lambda runtime already has (boto3, botocore) or nothing needs (Pillow)."""
    from infra.layer import SITE_PACKAGES

    assert package.zip_bytes <= 10_000_000
    with zipfile.ZipFile(package.zip_path) as archive:
        names = set(archive.namelist())
        assert {"app.py", "functions/composition.py", "functions/core/api.py"} <= names
        assert "chalice/app.py" in names  # Chalice's runtime, vendored by Chalice
        tops = {name.split("/")[0] for name in names}
        assert tops <= {"app.py", "chalice", "functions", "__pycache__"}, "a dependency in the zip"
        assert not _pyc_check(archive), "modules without bytecode"
        header = archive.read(importlib.util.cache_from_source("functions/core/api.py"))[:8]
    assert header[:4] == importlib.util.MAGIC_NUMBER  # compiled by this (the runtime's) Python
    assert int.from_bytes(header[4:8], "little") == 0b01  # hash-based, source not checked
    assert not [n for n in names if n.endswith(".pyc") and "__pycache__" not in n]

    with zipfile.ZipFile(package.layer_path) as archive:
        names = set(archive.namelist())
        assert all(name.startswith(SITE_PACKAGES) for name in names)
        tops = {name.removeprefix(SITE_PACKAGES).split("/")[0] for name in names}
        assert {"pynamodb", "jwt", "aws_lambda_powertools", "fpdf", "fontTools", "jinja2"} <= tops
        assert not tops & {"functions", "boto3", "botocore", "s3transfer", "PIL", "urllib3"}
        assert not _pyc_check(archive), "modules without bytecode"
    assert package.left_out >= {"botocore", "PIL"}


@pytest.mark.package
def test_template_lints_and_translates(package: Package) -> None:
    from functions.composition import models
    from infra.template import logical_id

    assert package.lint_findings == []
    sam = json.loads(package.template_path.read_text())
    assert sam["Parameters"]["JwtSecret"]["NoEcho"] is True

    resources = package.translated["Resources"]
    tables = {name for name, r in resources.items() if r["Type"] == "AWS::DynamoDB::Table"}
    assert tables == {logical_id(m) for m in models()}
    function = resources["APIHandler"]["Properties"]
    assert function["Runtime"] == RUNTIME
    assert set(function["Environment"]["Variables"]) == BSS_ENVIRONMENT
    assert function["Environment"]["Variables"]["BSS_JWT_SECRET"] == {"Ref": "JwtSecret"}
    policies = resources["ApiHandlerRole"]["Properties"]["Policies"]
    actions = {
        action
        for policy in policies
        for statement in policy["PolicyDocument"]["Statement"]
        for action in statement["Action"]
    }
    assert {"logs:CreateLogStream", "logs:PutLogEvents"} <= actions  # kept through the merge
    assert {"dynamodb:DescribeTable", "dynamodb:ConditionCheckItem", "dynamodb:Query"} <= actions


# Runs with `python -I -S`: no site-packages, no repo, no PYTHON* variables; only what Lambda puts
# on sys.path (argv[1:]: the unpacked function zip as /var/task, the layer's site-packages under
# /opt, and the runtime's boto3 and its dependencies as /var/runtime) and the standard library.
# Imports the app, serves two requests through the Lambda entry point (the first builds the
# container: settings, PynamoDB models) and renders an invoice PDF (without Pillow).
ISOLATED = r"""
import json, sys, sysconfig
task, *others = sys.argv[1:]
sys.path[:0] = [task, *others]

import app

def call(path):
    event = {
        "resource": path, "path": path, "httpMethod": "GET",
        "headers": {"accept": "application/json"}, "multiValueHeaders": {},
        "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "pathParameters": None, "stageVariables": None, "body": None, "isBase64Encoded": False,
        "requestContext": {"resourcePath": path, "httpMethod": "GET", "path": "/api" + path,
                           "stage": "api", "requestId": "r-1", "identity": {"sourceIp": "1.2.3.4"}},
    }
    return app.app(event, None)["statusCode"]

statuses = {path: call(path) for path in ("/health", "/openapi.json")}
import jwt, pynamodb.models
from functions.composition import models
from functions.core.persistence import table_resource
tables = [table_resource(m, m.base_name)["Properties"]["TableName"] for m in models()]

from decimal import Decimal
from functions.invoices.documents import render_pdf
from functions.invoices.domain import ISSUED, Invoice
party = {"name": "Contoso", "address": {"line1": "1 Main St"}}
invoice = Invoice(
    id="inv-1", tenant_id="t", run_id="r", account_id="a", currency="EUR",
    period_start="2026-01-01", period_end="2026-02-01", status=ISSUED, issuer=party,
    bill_to=party, subtotal=Decimal("10.00"), tax_rate=Decimal("0.19"), tax=Decimal("1.90"),
    total=Decimal("11.90"), line_count=0, created_at="2026-02-01T03:00:00Z",
    number="INV-000001", sequence=1, issued_at="2026-02-01T03:00:00Z",
)
pdf = render_pdf(invoice, [])

stdlib = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib")}
files = [getattr(m, "__file__", None) for m in list(sys.modules.values())]
where = {}
for f in files:
    if not f:
        continue
    place = next((p for p in sys.argv[1:] if f.startswith(p)), None)
    if place is None and (not any(f.startswith(d) for d in stdlib) or "site-packages" in f):
        place = "foreign"
    where.setdefault(place or "stdlib", set()).add(f)
print(json.dumps({"statuses": statuses, "tables": tables, "pdf": pdf[:5].decode(),
                  "pil": "PIL" in sys.modules, "app": app.__file__, "path": sys.path,
                  "where": {k: sorted(v) for k, v in where.items()}}))
"""


def tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.package
def test_unpacked_package_imports_and_serves_as_lambda_lays_it_out(
    package: Package, tmp_path: Path
) -> None:
    """The function zip in /var/task, the layer in /opt, boto3 from the runtime: the app imports
    from nowhere else, serves, and renders a PDF without Pillow; and it writes no file."""
    from functions.composition import models
    from infra.layer import unpack

    task, site, runtime = unpack(package.zip_path, package.layer_path, tmp_path)
    opt = tmp_path / "opt"
    before = tree(task) | tree(opt)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_REGION": "us-east-1",
        "BSS_TABLE_PREFIX": "pkg",
        "BSS_JWT_SECRET": "package-test-secret-0123456789abcdef",
        "BSS_BILLING_STATE_MACHINE": "arn:aws:states:us-east-1:1:stateMachine:pkg-billing-run",
        "BSS_DOCUMENTS_BUCKET": "pkg-documents",
        "BSS_MAIL_FROM": "billing@example.com",
        "BSS_PUBLIC_URL": "https://api.example.com",
    }
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", ISOLATED, str(task), str(site), str(runtime)],
        cwd=task,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["app"] == str(task / "app.py")
    assert result["statuses"] == {"/health": 200, "/openapi.json": 200}
    assert result["tables"] == [m.base_name for m in models()]
    assert result["pdf"] == "%PDF-"
    assert result["pil"] is False
    where = result["where"]
    assert "foreign" not in where, "modules loaded from outside the package and the stdlib"
    assert any("/functions/" in f for f in where[str(task)])
    assert any("/pynamodb/" in f for f in where[str(site)])
    assert any("/botocore/" in f for f in where[str(runtime)])
    assert not [f for f in where[str(site)] if "/functions/" in f]
    laid_out = {str(task), str(site), str(runtime)}
    stdlib = sys.base_prefix
    assert not [p for p in result["path"] if p not in laid_out and not p.startswith(stdlib)]
    assert tree(task) | tree(opt) == before, "the import wrote files: some module had no .pyc"


# --- the asynchronous paths, as deployed (the SAM template translated to CloudFormation) ---------

STREAM_READ = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"}
QUEUE_CONSUME = {
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ChangeMessageVisibility",
}
QUEUE_SEND = {"sqs:GetQueueUrl", "sqs:SendMessage"}
FOURTEEN_DAYS = 14 * 24 * 3600
#: what every function's environment holds (SAM Globals of infra/template.py)
BSS_ENVIRONMENT = {
    "BSS_TABLE_PREFIX",
    "BSS_JWT_SECRET",
    "BSS_BILLING_STATE_MACHINE",
    "BSS_DOCUMENTS_BUCKET",
    "BSS_MAIL_FROM",
    "BSS_PUBLIC_URL",
}


class Deployed:
    """The translated template, looked up the way a deployer reads it: tables and queues by their
    physical name, functions by their handler in app.py."""

    def __init__(self, resources: dict[str, Any]) -> None:
        self.resources = resources

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {n: r["Properties"] for n, r in self.resources.items() if r["Type"] == kind}

    def named(self, kind: str, base: str) -> str:
        """The logical id of the table or queue named ``${AWS::StackName}-<base>``."""
        key = "TableName" if kind == "AWS::DynamoDB::Table" else "QueueName"
        name = {"Fn::Sub": f"${{AWS::StackName}}-{base}"}
        found = [n for n, props in self.of_type(kind).items() if props.get(key) == name]
        assert len(found) == 1, f"{kind} named {base}: {found}"
        return found[0]

    def queue_arn(self, base: str) -> dict[str, Any]:
        return {"Fn::GetAtt": [self.named("AWS::SQS::Queue", base), "Arn"]}

    def stream_arn(self, table: str) -> dict[str, Any]:
        return {"Fn::GetAtt": [self.named("AWS::DynamoDB::Table", table), "StreamArn"]}

    def function(self, name: str) -> str:
        """The logical id of the Lambda function of ``app.<name>`` (Chalice's)."""
        handler = "app.app" if name == "api" else f"app.{name}"
        found = [
            n
            for n, props in self.of_type("AWS::Lambda::Function").items()
            if props["Handler"] == handler
        ]
        assert len(found) == 1, f"function {handler}: {found}"
        return found[0]

    def mapping(self, function: str, source_arn: dict[str, Any]) -> dict[str, Any]:
        found = [
            props
            for props in self.of_type("AWS::Lambda::EventSourceMapping").values()
            if props["FunctionName"] == {"Ref": self.function(function)}
            and props["EventSourceArn"] == source_arn
        ]
        assert len(found) == 1, f"mapping {source_arn} → {function}: {len(found)}"
        return found[0]

    def grants(self, function: str) -> set[tuple[str, str]]:
        """(action, resource) pairs of the function's role, resources as JSON."""
        role = self.resources[self.function(function)]["Properties"]["Role"]["Fn::GetAtt"][0]
        pairs = set()
        for policy in self.resources[role]["Properties"]["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                assert statement["Effect"] == "Allow"
                actions, resources = statement["Action"], statement["Resource"]
                for action in actions if isinstance(actions, list) else [actions]:
                    for resource in resources if isinstance(resources, list) else [resources]:
                        pairs.add((action, json.dumps(resource, sort_keys=True)))
        return pairs


def _pairs(actions: set[str], resources: list[Any]) -> set[tuple[str, str]]:
    return {(a, json.dumps(r, sort_keys=True)) for a in actions for r in resources}


@pytest.fixture(scope="module")
def deployed(package: Package) -> Deployed:
    return Deployed(package.translated["Resources"])


@pytest.mark.package
def test_every_stream_has_its_mapping_with_the_declared_settings(deployed: Deployed) -> None:
    from infra.events import STREAMS

    for source in STREAMS:
        assert deployed.mapping(source.function, deployed.stream_arn(source.table)) == {
            "FunctionName": {"Ref": deployed.function(source.function)},
            "EventSourceArn": deployed.stream_arn(source.table),
            "StartingPosition": "TRIM_HORIZON",
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BatchSize": source.batch_size,
            "MaximumBatchingWindowInSeconds": source.batching_window_s,
            "MaximumRetryAttempts": source.max_retries,
            "MaximumRecordAgeInSeconds": source.max_record_age_s,
            "BisectBatchOnFunctionError": source.bisect,
            "ParallelizationFactor": source.parallelization,
            "DestinationConfig": {
                "OnFailure": {"Destination": deployed.queue_arn(source.on_failure_queue)}
            },
        }
        failures = deployed.resources[deployed.named("AWS::SQS::Queue", source.on_failure_queue)]
        assert failures["Properties"]["MessageRetentionPeriod"] == FOURTEEN_DAYS


@pytest.mark.package
def test_every_queue_has_its_mapping_redrive_and_dead_letter_queue(deployed: Deployed) -> None:
    from infra.events import QUEUES, queue_names

    for base in queue_names():
        deployed.named("AWS::SQS::Queue", base)  # exists, named like the tables
    for source in QUEUES:
        assert deployed.mapping(source.function, deployed.queue_arn(source.queue)) == {
            "FunctionName": {"Ref": deployed.function(source.function)},
            "EventSourceArn": deployed.queue_arn(source.queue),
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BatchSize": source.batch_size,
        }
        queue = deployed.resources[deployed.named("AWS::SQS::Queue", source.queue)]["Properties"]
        assert queue["VisibilityTimeout"] == source.visibility_timeout_s
        assert queue["RedrivePolicy"] == {
            "deadLetterTargetArn": deployed.queue_arn(source.dead_letter_queue),
            "maxReceiveCount": source.max_receives,
        }
        dlq = deployed.resources[deployed.named("AWS::SQS::Queue", source.dead_letter_queue)]
        assert dlq["Properties"]["MessageRetentionPeriod"] == FOURTEEN_DAYS
        assert "RedrivePolicy" not in dlq["Properties"]
        # AWS refuses a mapping whose queue's visibility timeout is below the function's timeout
        function = deployed.resources[deployed.function(source.function)]["Properties"]
        assert function["Timeout"] <= source.visibility_timeout_s


@pytest.mark.package
def test_no_mapping_or_function_beyond_infra_events_and_billing(deployed: Deployed) -> None:
    from infra import billing
    from infra.events import QUEUES, SCHEDULES, STREAMS

    mappings = deployed.of_type("AWS::Lambda::EventSourceMapping")
    assert len(mappings) == len(STREAMS) + len(QUEUES)
    functions = set(deployed.of_type("AWS::Lambda::Function"))
    names = [s.function for s in STREAMS] + [q.function for q in QUEUES]
    consumers = {deployed.function(name) for name in names}
    billers = {deployed.function(name) for name in billing.functions()}
    scheduled = {deployed.function(s.function) for s in SCHEDULES}
    assert functions == {deployed.function("api"), *consumers, *billers, *scheduled}
    for name in consumers | billers | scheduled:
        props = deployed.resources[name]["Properties"]
        assert props["Timeout"] >= 30 and props["MemorySize"] >= 256
        assert set(props["Environment"]["Variables"]) == BSS_ENVIRONMENT


@pytest.mark.package
def test_billing_run_invokes_the_deployed_functions_and_the_schedule_starts_it(
    deployed: Deployed,
) -> None:
    """After the merge and SAM's translation, each Task's placeholder is the ARN of the function
    Chalice generated for that handler of app.py, and the daily rule targets billing_schedule."""
    from infra import billing

    (machine,) = deployed.of_type("AWS::StepFunctions::StateMachine").values()
    assert machine["DefinitionString"] == billing.DEFINITION_FILE.read_text()
    assert machine["DefinitionSubstitutions"] == {
        placeholder: {"Fn::GetAtt": [deployed.function(name), "Arn"]}
        for placeholder, name in billing.TASKS.items()
    }
    from infra.events import SCHEDULES

    rules = deployed.of_type("AWS::Events::Rule").values()
    permissions = deployed.of_type("AWS::Lambda::Permission").values()
    invoked = [p for p in permissions if p["Principal"] == "events.amazonaws.com"]
    scheduled = [billing.SCHEDULE_FUNCTION, *(s.function for s in SCHEDULES)]
    assert len(rules) == len(invoked) == len(scheduled)  # one rule and permission each
    for name in scheduled:
        function = deployed.function(name)
        (rule,) = [r for r in rules if r["Targets"][0]["Arn"] == {"Fn::GetAtt": [function, "Arn"]}]
        assert len([p for p in invoked if p["FunctionName"] == {"Ref": function}]) == 1
        assert rule["State"] == "ENABLED" and rule["ScheduleExpression"].startswith("cron(")


@pytest.mark.package
def test_billing_permissions_where_the_steps_need_them(deployed: Deployed) -> None:
    """Starting runs: the API and billing_schedule. Documents: billing_render writes them, the
    API reads them (and writes storefront logos, R30). Mail: billing_render, the API (sign-in
    links) and plans_stream (a new storefront's link), as MailFrom only. Nobody else has any
    of it."""
    from infra import billing, template
    from infra.events import QUEUES, STREAMS

    (bucket,) = deployed.of_type("AWS::S3::Bucket")
    objects = {"Fn::Sub": f"${{{bucket}.Arn}}/*"}
    starts = _pairs({"states:StartExecution"}, [template.state_machine_arn()]) | _pairs(
        {"states:DescribeExecution"}, [template.execution_arns()]
    )
    render = billing.TASKS["BillingRenderFunctionArn"]
    mail = _pairs({"ses:SendEmail", "ses:SendRawEmail"}, template.mail_identities())
    expected = {
        "api": starts | _pairs({"s3:GetObject", "s3:PutObject"}, [objects]) | mail,
        template.PLANS_FUNCTION: mail,
        billing.SCHEDULE_FUNCTION: starts,
        render: _pairs({"s3:PutObject"}, [objects])
        | _pairs({"ses:SendEmail", "ses:SendRawEmail"}, template.mail_identities()),
    }
    sources = [s.function for s in STREAMS] + [q.function for q in QUEUES]
    everyone = ["api", *billing.functions(), *sources]
    for function in dict.fromkeys(everyone):
        grants = deployed.grants(function)
        billing_grants = {
            (action, resource)
            for action, resource in grants
            if action.split(":")[0] in {"states", "s3", "ses", "lambda"}
        }
        assert billing_grants == expected.get(function, set()), function


@pytest.mark.package
def test_each_role_has_exactly_the_stream_and_queue_permissions_it_needs(
    deployed: Deployed,
) -> None:
    """Streams: read its table's stream (ListStreams has no resource-level permission), send to
    its on-failure queue. Queues: consume its queue, and send to it (the next page). The API
    sends jobs to every consumed queue. Nothing else on streams or queues (the billing functions
    none at all); logs and the tables for all."""
    from infra import billing
    from infra.events import QUEUES, RECONCILIATION_PAGES, SCHEDULES, SET_ASIDE_TABLES, STREAMS

    # issue 16: the API's GET /failures peeks at the on-failure and dead-letter queues and reads
    # the streams' records they name
    peeked = {s.on_failure_queue for s in STREAMS} | {q.dead_letter_queue for q in QUEUES}
    expected: dict[str, set[tuple[str, str]]] = {
        "api": _pairs(QUEUE_SEND, [deployed.queue_arn(q.queue) for q in QUEUES])
        | _pairs({"sqs:GetQueueUrl", "sqs:ReceiveMessage"}, [deployed.queue_arn(q) for q in peeked])
        | _pairs(
            {"dynamodb:GetRecords", "dynamodb:GetShardIterator"},
            [deployed.stream_arn(t) for t in {s.table for s in STREAMS}],
        )
    }
    expected.update({name: set() for name in billing.functions()})
    for schedule in SCHEDULES:  # it sends the first page of each run it starts
        expected[schedule.function] = _pairs(
            QUEUE_SEND, [deployed.queue_arn(q) for q in schedule.sends_to]
        )
    # R33: the reconciliation's pages list the records set aside without consuming them
    failures = {s.on_failure_queue for s in STREAMS if s.table in SET_ASIDE_TABLES}
    expected[RECONCILIATION_PAGES] = _pairs(
        {"sqs:GetQueueUrl", "sqs:ReceiveMessage"}, [deployed.queue_arn(q) for q in failures]
    ) | _pairs(
        {"dynamodb:GetRecords", "dynamodb:GetShardIterator"},
        [deployed.stream_arn(t) for t in SET_ASIDE_TABLES],
    )
    for stream in STREAMS:
        expected.setdefault(stream.function, set()).update(
            _pairs(STREAM_READ, [deployed.stream_arn(stream.table)])
            | _pairs({"dynamodb:ListStreams"}, ["*"])
            | _pairs({"sqs:SendMessage"}, [deployed.queue_arn(stream.on_failure_queue)])
        )
    for queue in QUEUES:
        expected.setdefault(queue.function, set()).update(
            _pairs(QUEUE_CONSUME | QUEUE_SEND, [deployed.queue_arn(queue.queue)])
        )
    tables = deployed.of_type("AWS::DynamoDB::Table")
    for function, needed in expected.items():
        grants = deployed.grants(function)
        asynchronous = {
            (action, resource)
            for action, resource in grants
            if action.startswith("sqs:") or action in STREAM_READ | {"dynamodb:ListStreams"}
        }
        assert asynchronous == needed, function
        actions = {action for action, _ in grants}
        assert {"logs:CreateLogStream", "logs:PutLogEvents"} <= actions, function
        granted_tables = {r for a, r in grants if a == "dynamodb:PutItem"}
        assert granted_tables == {json.dumps({"Fn::GetAtt": [t, "Arn"]}) for t in tables}
        assert not [a for a in actions if "*" in a], function
        wide = {a for a, r in grants if r == '"*"'}
        assert wide <= {"dynamodb:ListStreams"}, function


@pytest.mark.package
def test_alarms_mail_the_operator_on_every_failure_queue_lag_failed_run_and_5xx(
    deployed: Deployed,
) -> None:
    """Issue 16: one SNS topic mailing ``AlarmEmail``; an alarm on each on-failure and
    dead-letter queue's depth > 0, on each stream consumer's iterator age > 5 min, on a failed
    billing execution and on an API 5xx, each notifying the topic (cfn-lint checks the rest)."""
    from infra import alarms, events, template

    (topic,) = deployed.of_type("AWS::SNS::Topic").values()
    assert topic["Subscription"] == [
        {"Protocol": "email", "Endpoint": {"Ref": alarms.ALARM_EMAIL_PARAMETER}}
    ]
    found = deployed.of_type("AWS::CloudWatch::Alarm")
    assert all(a["AlarmActions"] == [{"Ref": alarms.ALARM_TOPIC}] for a in found.values())
    watched = {
        (a["MetricName"], json.dumps(a["Dimensions"][0]["Value"], sort_keys=True))
        for a in found.values()
    }
    queues = {template.queue_id(q) for q in alarms.failure_queues()}
    assert queues == {template.queue_id(s.on_failure_queue) for s in events.STREAMS} | {
        template.queue_id(s.dead_letter_queue) for s in events.QUEUES
    }
    for queue in queues:
        value = json.dumps({"Fn::GetAtt": [queue, "QueueName"]}, sort_keys=True)
        assert ("ApproximateNumberOfMessagesVisible", value) in watched
    for source in events.STREAMS:
        value = json.dumps({"Ref": deployed.function(source.function)}, sort_keys=True)
        assert ("IteratorAge", value) in watched
    lag = [a for a in found.values() if a["MetricName"] == "IteratorAge"]
    assert {a["Threshold"] for a in lag} == {300_000}
    assert ("ExecutionsFailed", json.dumps({"Ref": template.STATE_MACHINE_ID})) in watched
    assert ("5XXError", json.dumps({"Ref": "AWS::StackName"})) in watched
    assert len(found) == len(queues) + len(events.STREAMS) + 2

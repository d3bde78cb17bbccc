"""The package deployed (issue 16): the CloudFormation that ``python -m infra.package`` translates
from Chalice's SAM template, created as a stack on moto's CloudFormation, everything but the API
Gateway, then used: a sale written through the API reaches the provider through the deployed
stream functions, and a billing run started through the API runs on the deployed state machine.

What moto's CloudFormation is given, beside the package's zip uploaded to an S3 bucket:

* the translated template without its API Gateway resources and what refers to them (the API's
  ``AWS::Lambda::Permission``, the ``EndpointURL`` and ``RestAPIId`` outputs): moto's
  CloudFormation cannot create a REST API from a swagger ``Body``. The gateway is what
  ``infra/smoke.sh`` checks on a real account (docs/operations.md, "Deploying");
* every function's ``Code`` (and a layer version's ``Content``) pointed at that bucket, under the
  key the placeholder names (the package's file of that name);
* the state machine's ``DefinitionSubstitutions`` written as the equivalent ``Fn::Sub``: moto
  ignores ``DefinitionSubstitutions`` (the Task states would keep their ``${...}``
  placeholders). Fn::Sub's string form, since its list form runs ``string.Template``, which
  turns the definition's ``$$.Map.Item.Value`` into ``$.Map.Item.Value``.

What moto does not do, and how the tests stand in (moto 5.2.5, pinned; ``local.stepfunctions``
refuses another release):

* ``AWS::CloudWatch::Alarm`` has no CloudFormation model in moto: the stack lists the alarms as
  created, with neither name nor type, and CloudWatch has none (their properties are checked
  on the template by ``test_package.py``);
* a function's ``Layers`` are not passed on by moto's CloudFormation, and IAM is not enforced
  (each role's least privilege is checked on the template by ``test_package.py``);
* moto creates a stack's state machine in the Step Functions backend that executes nothing
  (NOTES-stack): the fixture has moto's CloudFormation create it in the executing one, so the
  state machine the stack created is the one that runs;
* moto runs Lambda code only in Docker (not here): the functions' code runs in this process, the
  handler each deployed function's ``Handler`` names (``app.<name>``, from this repository, the
  sources the zip carries: ``test_package.py`` checks the zip imports and serves on its own),
  with the environment the deployed functions have. The state machine's Lambda Task states
  are routed to them by the deployed function names (``local.stepfunctions.install``);
* moto delivers a mapped stream's records itself, inside the writer's PutItem (with Docker),
  then drops them, and a mapped queue's messages inside SendMessage: that in-line delivery is
  detached from the stack's tables and queues, and ``Poller`` plays Lambda's poller on each
  deployed stream mapping instead (its stream, its batch size, its function).
"""

from __future__ import annotations

import ast
import base64
import functools
import hashlib
import importlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from infra import billing, events, template
from local import moto_guard, stepfunctions
from local.runner import Function, LambdaContext
from local.streams import lambda_event, read_records
from tests.conftest import SECRET, TEST_ENV, Api
from tests.integration.test_backorder import Reseller
from tests.integration.test_billing import setup_tenant, subscribe
from tests.integration.tiers import Clock, invoices, ok, run

if TYPE_CHECKING:
    from infra.package import Package

STACK = "bss-deploy"
REGION = "us-east-1"
ACCOUNT = stepfunctions.DEFAULT_ACCOUNT
ARTIFACTS = "bss-deploy-artifacts"
#: every parameter of the template (the test fails on a new one: give it a value here)
PARAMETERS = {
    "JwtSecret": SECRET,
    "MailFrom": "billing@bss.test",
    "AlarmEmail": "ops@bss.test",
    "PublicUrl": "https://api.bss.test",
}
#: resource types moto's CloudFormation lists as created without creating anything
NOT_CREATED_BY_MOTO = {"AWS::CloudWatch::Alarm"}
#: the property that holds the S3 location (``{S3Bucket, S3Key}``) of a resource's code
CODE_PROPERTIES = {"AWS::Lambda::Function": "Code", "AWS::Lambda::LayerVersion": "Content"}
FOURTEEN_DAYS = 14 * 24 * 3600

pytestmark = [
    pytest.mark.package,
    # moto warns of each resource it cannot create (NOT_CREATED_BY_MOTO)
    pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning"),
]


# --- the template moto's CloudFormation is given ----------------------------------------------


def references(node: Any) -> set[str]:
    """The logical ids a template fragment names: Ref, Fn::GetAtt, Fn::Sub, DependsOn."""
    if isinstance(node, list):
        return set().union(*(references(item) for item in node))
    if not isinstance(node, dict):
        return set()
    found: set[str] = set()
    for key, value in node.items():
        if key == "Ref" and isinstance(value, str):
            found.add(value)
        elif key == "Fn::GetAtt":
            found.add(value[0] if isinstance(value, list) else value.split(".")[0])
        elif key == "Fn::Sub":
            text, variables = (value, {}) if isinstance(value, str) else value
            names = {name.split(".")[0] for name in re.findall(r"\$\{([^!}][^}]*)\}", text)}
            found |= (names - set(variables)) | references(variables)
        elif key == "DependsOn":
            found |= {value} if isinstance(value, str) else set(value)
        else:
            found |= references(value)
    return found


def without_api_gateway(translated: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """The template less its API Gateway resources and whatever refers to them; the dropped
    logical ids."""
    resources = translated["Resources"]
    dropped = {n for n, r in resources.items() if r["Type"].startswith("AWS::ApiGateway::")}
    while more := {n for n, r in resources.items() if n not in dropped and references(r) & dropped}:
        dropped |= more
    outputs = translated.get("Outputs", {})
    return {
        **translated,
        "Resources": {n: r for n, r in resources.items() if n not in dropped},
        "Outputs": {n: o for n, o in outputs.items() if not references(o) & dropped},
    }, dropped


def _sub_name(value: dict[str, Any]) -> str:
    """A substitution's value as Fn::Sub names it: ``Fn::GetAtt [X, Arn]`` → ``X.Arn``."""
    if "Fn::GetAtt" in value:
        return ".".join(value["Fn::GetAtt"])
    if "Ref" in value:
        return str(value["Ref"])
    raise ValueError(f"a substitution Fn::Sub cannot name: {value}")


def substitutions_as_sub(resources: dict[str, Any]) -> None:
    """Every state machine's ``DefinitionSubstitutions`` (which moto ignores) as the equivalent
    Fn::Sub of its ``DefinitionString``, in place."""
    for resource in resources.values():
        props = resource["Properties"]
        if resource["Type"] == "AWS::StepFunctions::StateMachine" and props.get(
            "DefinitionSubstitutions"
        ):
            text = props["DefinitionString"]
            for placeholder, value in props.pop("DefinitionSubstitutions").items():
                text = text.replace(f"${{{placeholder}}}", f"${{{_sub_name(value)}}}")
            props["DefinitionString"] = {"Fn::Sub": text}


def code_locations(resources: dict[str, Any]) -> list[dict[str, Any]]:
    """The S3 code locations of the functions and layer versions (the placeholders
    ``sam_translate`` wrote), to be changed in place."""
    return [
        resource["Properties"][CODE_PROPERTIES[resource["Type"]]]
        for resource in resources.values()
        if resource["Type"] in CODE_PROPERTIES
    ]


def for_moto(translated: dict[str, Any], package_dir: Path) -> tuple[dict[str, Any], set[str]]:
    """What moto's CloudFormation is given (the module docstring), and the dropped logical ids;
    the package's files the code locations name are uploaded to ``ARTIFACTS``."""
    deployed, dropped = without_api_gateway(json.loads(json.dumps(translated)))
    substitutions_as_sub(deployed["Resources"])
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=ARTIFACTS)
    locations = code_locations(deployed["Resources"])
    for key in {location["S3Key"] for location in locations}:
        local = package_dir / PurePosixPath(key).name
        assert local.is_file(), f"the package has no {local.name} for the code location {key}"
        s3.upload_file(str(local), ARTIFACTS, key)
    for location in locations:
        location["S3Bucket"] = ARTIFACTS
    return deployed, dropped


# --- the deployed stack -------------------------------------------------------------------------


def handler(name: str) -> Function:
    """What Lambda calls for a function's ``Handler`` (``app.subscriptions_stream``)."""
    module, attribute = name.rsplit(".", 1)
    found: Function = getattr(importlib.import_module(module), attribute)
    return found


def detach_moto_delivery() -> None:
    """moto invokes a mapped function itself inside the writer's request (module docstring):
    detached from every table and queue, the mappings staying as deployed."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.sqs.models import sqs_backends

    for table in dynamodb_backends[ACCOUNT][REGION].tables.values():
        table.lambda_event_source_mappings.clear()
    for queue in sqs_backends[ACCOUNT][REGION].queues.values():
        queue.lambda_event_source_mappings.clear()


@dataclass
class Stack:
    """The created stack, looked up as a deployer would: resources by logical id, functions by
    their handler in ``app.py``."""

    template: dict[str, Any]  # what moto's CloudFormation was given
    dropped: set[str]  # the logical ids left out (the API Gateway)
    package_dir: Path
    described: dict[str, Any]  # DescribeStacks
    summaries: list[dict[str, Any]]  # ListStackResources

    @staticmethod
    def client(service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    def physical(self, logical: str) -> str:
        (found,) = [s for s in self.summaries if s["LogicalResourceId"] == logical]
        return str(found["PhysicalResourceId"])

    @functools.cached_property
    def functions(self) -> list[dict[str, Any]]:
        """The configuration of every deployed function."""
        return [
            self.client("lambda").get_function(FunctionName=s["PhysicalResourceId"])[
                "Configuration"
            ]
            for s in self.summaries
            if s["ResourceType"] == "AWS::Lambda::Function"
        ]

    def function(self, name: str) -> dict[str, Any]:
        """The deployed function of ``app.<name>`` (``api``: the API's, ``app.app``)."""
        wanted = "app.app" if name == "api" else f"app.{name}"
        (found,) = [f for f in self.functions if f["Handler"] == wanted]
        return found

    def queue_arn(self, base: str) -> str:
        return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{STACK}-{base}"

    def stream_arn(self, table: str) -> str:
        described = self.client("dynamodb").describe_table(TableName=f"{STACK}-{table}")
        return str(described["Table"]["LatestStreamArn"])


@pytest.fixture(scope="module")
def stack(package: Package) -> Iterator[Stack]:
    """The stack on in-process moto (state machines executed, no Docker), and this process's app
    configured as the deployed functions are: their environment, their handlers answering the
    state machine's Task states."""
    from moto.stepfunctions import models as moto_states
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    from functions import composition

    stepfunctions.install({})  # first: it refuses a moto release other than the one patched here
    moto_guard.install()
    try:
        with pytest.MonkeyPatch.context() as patch, mock_aws(config=stepfunctions.MOTO_CONFIG):
            for name, value in TEST_ENV.items():
                if name.startswith("AWS_"):
                    patch.setenv(name, value)
                else:  # the app gets the deployed functions' environment, below
                    patch.delenv(name, raising=False)
            # moto's CloudFormation creates a state machine where executions never look
            patch.setattr(moto_states, "stepfunctions_backends", stepfunctions_parser_backends)
            deployed, dropped = for_moto(package.translated, package.zip_path.parent)
            cloudformation = Stack.client("cloudformation")
            cloudformation.create_stack(
                StackName=STACK,
                TemplateBody=json.dumps(deployed),
                Parameters=[
                    {"ParameterKey": k, "ParameterValue": v} for k, v in PARAMETERS.items()
                ],
                Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
            )
            detach_moto_delivery()
            (described,) = cloudformation.describe_stacks(StackName=STACK)["Stacks"]
            summaries = cloudformation.list_stack_resources(StackName=STACK)[
                "StackResourceSummaries"
            ]
            stack = Stack(deployed, dropped, package.zip_path.parent, described, summaries)
            for name, value in stack.function("api")["Environment"]["Variables"].items():
                patch.setenv(name, value)
            stepfunctions.install(
                {f["FunctionName"]: handler(f["Handler"]) for f in stack.functions}
            )
            composition.reset()
            yield stack
    finally:
        stepfunctions.uninstall()
        composition.reset()


# --- what the stack created ---------------------------------------------------------------------


def test_the_stack_creates_everything_but_the_api_gateway(stack: Stack, package: Package) -> None:
    assert set(PARAMETERS) == set(package.translated["Parameters"])
    assert stack.described["StackStatus"] == "CREATE_COMPLETE"
    resources = package.translated["Resources"]
    dropped = {resources[n]["Type"] for n in stack.dropped}
    assert "AWS::ApiGateway::RestApi" in dropped
    for name in stack.dropped:  # the gateway, and the permission that lets it invoke the API
        kind, props = resources[name]["Type"], resources[name]["Properties"]
        assert kind.startswith("AWS::ApiGateway::") or (
            kind == "AWS::Lambda::Permission" and props["Principal"] == "apigateway.amazonaws.com"
        ), name
    assert {s["ResourceStatus"] for s in stack.summaries} == {"CREATE_COMPLETE"}
    created = [(s["LogicalResourceId"], s["ResourceType"]) for s in stack.summaries]
    kept = [(n, r["Type"]) for n, r in resources.items() if n not in stack.dropped]
    # moto lists a resource it cannot create with neither name nor type
    assert sorted(created) == sorted(
        ("", "") if kind in NOT_CREATED_BY_MOTO else (n, kind) for n, kind in kept
    )
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.described["Outputs"]}
    assert outputs["BillingRunStateMachineArn"] == stack.physical(template.STATE_MACHINE_ID)
    assert outputs["DocumentsBucketName"] == stack.physical(template.DOCUMENTS_BUCKET)
    assert "EndpointURL" not in outputs  # the API's URL: on a real account (infra/smoke.sh)


def test_every_table_of_the_models_exists_with_its_stream_where_the_template_asks(
    stack: Stack,
) -> None:
    from functions.composition import models
    from functions.core.persistence import table_resource

    dynamodb = stack.client("dynamodb")
    assert sorted(dynamodb.list_tables()["TableNames"]) == sorted(
        f"{STACK}-{m.base_name}" for m in models()
    )
    for model in models():
        table = dynamodb.describe_table(TableName=f"{STACK}-{model.base_name}")["Table"]
        declared = table_resource(model, model.base_name)["Properties"]
        assert table["KeySchema"] == declared["KeySchema"], model.base_name
        indexes = {i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])}
        assert indexes == {i["IndexName"] for i in declared.get("GlobalSecondaryIndexes", [])}
        stream = table.get("StreamSpecification", {"StreamEnabled": False})
        expected = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
        assert stream == (expected if model.streamed else {"StreamEnabled": False}), model.base_name


def test_queues_redrive_to_their_dead_letter_queues_and_keep_failures_fourteen_days(
    stack: Stack,
) -> None:
    sqs = stack.client("sqs")

    def attributes(base: str) -> dict[str, str]:
        url = sqs.get_queue_url(QueueName=f"{STACK}-{base}")["QueueUrl"]
        found: dict[str, str] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
            "Attributes"
        ]
        return found

    assert len(sqs.list_queues()["QueueUrls"]) == len(events.queue_names())
    for source in events.QUEUES:
        queue = attributes(source.queue)
        assert int(queue["VisibilityTimeout"]) == source.visibility_timeout_s
        assert json.loads(queue["RedrivePolicy"]) == {
            "deadLetterTargetArn": stack.queue_arn(source.dead_letter_queue),
            "maxReceiveCount": source.max_receives,
        }
    for base in {s.dead_letter_queue for s in events.QUEUES} | {
        s.on_failure_queue for s in events.STREAMS
    }:
        assert int(attributes(base)["MessageRetentionPeriod"]) == FOURTEEN_DAYS, base


def test_the_alarm_topic_mails_the_alarm_email(stack: Stack) -> None:
    from infra import alarms

    sns = stack.client("sns")
    topic = stack.physical(alarms.ALARM_TOPIC)
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [
        ("email", PARAMETERS["AlarmEmail"])
    ]
    # moto lists the alarms as created but creates none (no CloudFormation model for them):
    # when it does, this fails, and the alarms can be asserted here
    assert "AWS::CloudWatch::Alarm" in NOT_CREATED_BY_MOTO
    assert stack.client("cloudwatch").describe_alarms()["MetricAlarms"] == []


def test_each_schedule_rule_invokes_its_deployed_function(stack: Stack) -> None:
    scheduled = {billing.SCHEDULE_FUNCTION: billing.SCHEDULE} | {
        s.function: s.expression for s in events.SCHEDULES
    }
    rules = stack.client("events")
    found = {}
    for rule in rules.list_rules()["Rules"]:
        (target,) = rules.list_targets_by_rule(Rule=rule["Name"])["Targets"]
        found[target["Arn"]] = (rule["ScheduleExpression"], rule["State"])
        policy = stack.client("lambda").get_policy(FunctionName=target["Arn"])["Policy"]
        (allowed,) = json.loads(policy)["Statement"]
        assert allowed["Principal"] == {"Service": "events.amazonaws.com"}
        assert allowed["Condition"]["ArnLike"]["AWS:SourceArn"] == rule["Arn"]
    assert found == {
        stack.function(name)["FunctionArn"]: (expression, "ENABLED")
        for name, expression in scheduled.items()
    }


def test_every_mapping_feeds_its_deployed_function_with_the_declared_settings(
    stack: Stack,
) -> None:
    mappings = stack.client("lambda").list_event_source_mappings()["EventSourceMappings"]
    assert len(mappings) == len(events.STREAMS) + len(events.QUEUES)

    def mapping(function: str, source_arn: str) -> dict[str, Any]:
        arn = stack.function(function)["FunctionArn"]
        (found,) = [
            m for m in mappings if m["FunctionArn"] == arn and m["EventSourceArn"] == source_arn
        ]
        return found

    for stream in events.STREAMS:
        found = mapping(stream.function, stack.stream_arn(stream.table))
        assert {k: found.get(k) for k in ("StartingPosition", "FunctionResponseTypes")} == {
            "StartingPosition": "TRIM_HORIZON",
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        }
        assert (
            found["BatchSize"],
            found["MaximumBatchingWindowInSeconds"],
            found["MaximumRetryAttempts"],
            found["MaximumRecordAgeInSeconds"],
            found["BisectBatchOnFunctionError"],
            found["ParallelizationFactor"],
        ) == (
            stream.batch_size,
            stream.batching_window_s,
            stream.max_retries,
            stream.max_record_age_s,
            stream.bisect,
            stream.parallelization,
        )
        assert found["DestinationConfig"] == {
            "OnFailure": {"Destination": stack.queue_arn(stream.on_failure_queue)}
        }
    for queue in events.QUEUES:
        found = mapping(queue.function, stack.queue_arn(queue.queue))
        assert found["BatchSize"] == queue.batch_size
        assert found["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_every_function_runs_the_package_with_the_stacks_environment(
    stack: Stack, package: Package
) -> None:
    """Each function of ``app.py`` once, with the zip that was uploaded, and the environment
    that finds the stack's tables, state machine, bucket and parameters."""
    from functions.entrypoints import FUNCTIONS

    functions = stack.functions
    assert sorted(f["Handler"] for f in functions) == sorted(
        ["app.app", *(f"app.{name}" for name in FUNCTIONS)]
    )
    expected = {
        "BSS_TABLE_PREFIX": STACK,
        "BSS_JWT_SECRET": PARAMETERS["JwtSecret"],
        "BSS_BILLING_STATE_MACHINE": stack.physical(template.STATE_MACHINE_ID),
        "BSS_DOCUMENTS_BUCKET": stack.physical(template.DOCUMENTS_BUCKET),
        "BSS_MAIL_FROM": PARAMETERS["MailFrom"],
        "BSS_PUBLIC_URL": PARAMETERS["PublicUrl"],
    }
    resources = stack.template["Resources"]
    iam = stack.client("iam")

    @functools.cache
    def sha256(key: str) -> str:
        uploaded = (stack.package_dir / PurePosixPath(key).name).read_bytes()
        return base64.b64encode(hashlib.sha256(uploaded).digest()).decode()

    for function in functions:
        (logical,) = [
            s["LogicalResourceId"]
            for s in stack.summaries
            if s["PhysicalResourceId"] == function["FunctionName"]
        ]
        assert function["CodeSha256"] == sha256(resources[logical]["Properties"]["Code"]["S3Key"])
        assert function["Environment"]["Variables"] == expected, function["Handler"]
        role = resources[logical]["Properties"]["Role"]["Fn::GetAtt"][0]
        assert function["Role"] == iam.get_role(RoleName=stack.physical(role))["Role"]["Arn"]
    assert package.zip_path.name in {
        PurePosixPath(r["Properties"]["Code"]["S3Key"]).name
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function"
    }


def test_the_billing_state_machine_runs_the_definition_file_on_the_deployed_functions(
    stack: Stack,
) -> None:
    machine = stack.client("stepfunctions").describe_state_machine(
        stateMachineArn=stack.physical(template.STATE_MACHINE_ID)
    )
    arns = {p: stack.function(name)["FunctionArn"] for p, name in billing.TASKS.items()}
    assert machine["definition"] == billing.substitute(billing.definition(), arns)
    iam = stack.client("iam")
    role = stack.physical(template.STATE_MACHINE_ROLE)
    assert machine["roleArn"] == iam.get_role(RoleName=role)["Role"]["Arn"]
    (policy,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]
    (statement,) = ast.literal_eval(document)["Statement"]  # moto keeps the dict's repr
    assert statement["Action"] == ["lambda:InvokeFunction"]
    assert sorted(statement["Resource"]) == sorted(arns.values())


# --- the deployed stack at work -----------------------------------------------------------------


class Poller:
    """Lambda's poller for one deployed stream mapping: the new records of its stream, in
    batches of its size, as the mapping's event, to the handler its function's ``Handler``
    names; every batch must be processed (no ``batchItemFailures``)."""

    def __init__(self, mapping: dict[str, Any], function: dict[str, Any]) -> None:
        self.arn = str(mapping["EventSourceArn"])
        self.batch_size = int(mapping["BatchSize"])
        self.function = function
        self.handler = handler(function["Handler"])
        self.last: str | None = None

    def deliver(self) -> int:
        records = read_records(Stack.client("dynamodbstreams"), self.arn, after=self.last)
        for start in range(0, len(records), self.batch_size):
            context = LambdaContext(
                function_name=self.function["FunctionName"],
                invoked_function_arn=self.function["FunctionArn"],
            )
            event = lambda_event(records[start : start + self.batch_size], self.arn)
            answer = self.handler(event, context)
            assert answer["batchItemFailures"] == [], self.function["Handler"]
        if records:
            self.last = records[-1]["dynamodb"]["SequenceNumber"]
        return len(records)


def stream_pollers(stack: Stack) -> list[Poller]:
    functions = {f["FunctionArn"]: f for f in stack.functions}
    mappings = stack.client("lambda").list_event_source_mappings()["EventSourceMappings"]
    return [
        Poller(m, functions[m["FunctionArn"]])
        for m in mappings
        if m["EventSourceArn"].startswith("arn:aws:dynamodb:")
    ]


def test_a_sale_reaches_the_provider_through_the_deployed_stream_functions(stack: Stack) -> None:
    """R12-R14 on the stack: a reseller tier's sale, written through the API, is mirrored in
    its provider's tier with the provider's own order once the deployed stream mappings have
    delivered the tables' records to their functions."""
    api = Api()
    try:
        world = Reseller(api)
        world.go_live()
        sale = world.subscribe(world.x, world.e3_copy, quantity=4)
        assert world.provider_subscriptions() == []  # nothing reaches the provider by itself
        pollers = stream_pollers(stack)
        delivered = {p.function["Handler"]: 0 for p in pollers}
        for _ in range(20):  # a handler's writes are records of the next round (R17)
            counts = [(p.function["Handler"], p.deliver()) for p in pollers]
            for name, count in counts:
                delivered[name] += count
            if not any(count for _, count in counts):
                break
        assert delivered["app.subscriptions_stream"] > 0
        (mirror,) = world.provider_subscriptions()
        assert mirror["source"]["subscription_id"] == sale["id"] and mirror["mirrored"]
        assert (mirror["product_id"], mirror["quantity"], mirror["unit_price"]) == (
            world.e3["id"],
            4,
            "23.50",
        )
        assert [o["type"] for o in world.provider_orders()] == ["new"]
    finally:
        api.close()


def test_a_billing_run_started_through_the_api_runs_on_the_deployed_state_machine(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R24, R26 on the stack: ``POST /billing-runs`` starts an execution of the state machine the
    stack created (the ARN of the deployed environment), whose Task states invoke the deployed
    billing functions; the customer's invoice is numbered, its PDF lands in the stack's
    bucket, and it is mailed from ``MailFrom``."""
    sfn, s3 = stack.client("stepfunctions"), stack.client("s3")
    # as on a real account, the sender is verified in SES before invoices are mailed
    stack.client("ses").verify_email_identity(EmailAddress=PARAMETERS["MailFrom"])
    Clock(monkeypatch).set("2026-03-01")
    api = Api()
    try:
        tenant = setup_tenant(api)
        admin = tenant["admin"]
        subscribe(api, admin, tenant["z"], tenant["product"], quantity=3)
        started = run(api, admin, "2026-03-01")
        machine = stack.physical(template.STATE_MACHINE_ID)
        (execution,) = sfn.list_executions(stateMachineArn=machine)["executions"]
        finished = stepfunctions.wait(sfn, execution["executionArn"], timeout=60)
        assert finished["status"] == "SUCCEEDED", finished
        assert json.loads(finished["output"])["status"] == "completed"
        assert ok(api.call("GET", f"/billing-runs/{started['id']}", admin))["status"] == "completed"
        (invoice,) = invoices(api, admin, tenant["z"])
        assert (invoice["number"], invoice["total"]) == ("INV-000001", "89.25")
        bucket = stack.physical(template.DOCUMENTS_BUCKET)
        (document,) = s3.list_objects_v2(Bucket=bucket)["Contents"]
        body = s3.get_object(Bucket=bucket, Key=document["Key"])["Body"].read()
        assert body.startswith(b"%PDF")
        assert stack.client("ses").get_send_quota()["SentLast24Hours"] == 1
    finally:
        api.close()

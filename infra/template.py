"""The merge template for ``chalice package --merge-template``, generated from the models, from
``infra/events.py`` and from ``infra/billing.py``.

    python -m infra.template            # writes infra/template.json (commit it)
    python -m infra.template --check    # exits 1 if infra/template.json is stale

What it adds to Chalice's SAM template:

* one ``AWS::DynamoDB::Table`` per model of ``functions.composition.models()``, named
  ``${AWS::StackName}-<base_name>`` (``table_resource``; streamed models get NEW_AND_OLD_IMAGES);
* one ``AWS::SQS::Queue`` per name of ``events.queue_names()``, named ``${AWS::StackName}-<base>``
  like the tables (what ``Settings.queue_name`` finds at run time): a consumed queue has the
  ``VisibilityTimeout`` of its ``QueueSource`` and a ``RedrivePolicy`` to its dead-letter queue
  after ``max_receives`` receives; dead-letter and on-failure queues keep messages 14 days (the
  maximum) for a person to inspect (R18);
* one ``AWS::Lambda::EventSourceMapping`` per source of ``infra/events.py`` (``<Function>From
  <Table|Queue>``), on the Chalice-generated function of that name, with
  ``ReportBatchItemFailures``: a stream from TRIM_HORIZON with its batch size and window, retry
  limit, maximum record age, bisection, parallelization and an SQS on-failure destination; a
  queue with its batch size;
* the ``Timeout`` and ``MemorySize`` of those functions (a queue consumer's timeout is at most a
  sixth of its queue's visibility timeout, as AWS recommends);
* the billing run of ``infra/billing.py`` (R24): an ``AWS::StepFunctions::StateMachine``
  ``${AWS::StackName}-billing-run`` whose ``DefinitionString`` is ``infra/billing_run.asl.json``
  as it is (the file ``local/stepfunctions.py`` runs on moto) and whose
  ``DefinitionSubstitutions`` fill each Task's ``${...FunctionArn}`` placeholder with the ARN of
  the Chalice function of that name; its role, which may invoke exactly those functions; an
  ``AWS::Events::Rule`` on the daily ``billing.SCHEDULE`` targeting ``billing_schedule``, with the
  ``AWS::Lambda::Permission`` that lets EventBridge invoke it; the ``Timeout`` and ``MemorySize``
  of the billing functions;
* the ``AWS::S3::Bucket`` of invoice documents (private, encrypted, versioned, retained when the
  stack is deleted, named by CloudFormation: bucket names are global);
* the parameters ``JwtSecret`` (NoEcho), ``MailFrom`` (the SES-verified sender of invoice mail)
  and ``PublicUrl`` (the API's base URL, for links in mail) and, in SAM ``Globals``, the
  environment of every function: ``BSS_TABLE_PREFIX`` = the stack name (so the app finds the
  tables and queues above), ``BSS_JWT_SECRET``, ``BSS_BILLING_STATE_MACHINE`` (the state
  machine's ARN, built from its name: a ``Ref`` would be circular), ``BSS_DOCUMENTS_BUCKET`` (the
  bucket's name), ``BSS_MAIL_FROM`` and ``BSS_PUBLIC_URL``;
* the API Gateway's answers in the error object of SPEC §9 (R29), on Chalice's ``RestAPI`` (its
  ``DefinitionBody`` is the swagger document of the routes, ``api_patch``): every path gets an
  ``ANY`` method to the API's function, so a method the path lacks reaches the app, which answers
  405 with ``Allow`` (without it API Gateway answers 403 "Missing Authentication Token"); the
  gateway responses answer a path the API lacks (``MISSING_AUTHENTICATION_TOKEN``, and
  ``INCOMPLETE_SIGNATURE`` when the request carries an ``Authorization`` header) with the app's
  404 ``not_found`` (``functions.core.errors.path_not_found``, which ``local/gateway.py`` answers
  locally), a body over API Gateway's 10 MB with 413 ``payload_too_large``, and every other
  answer API Gateway makes itself (``DEFAULT_4XX``, ``DEFAULT_5XX``) with its message in the error
  object;
* the alarms of ``infra/alarms.py`` (an SNS topic mailing the ``AlarmEmail`` parameter; a
  failure or dead-letter queue holding a message, a stream consumer 5 minutes behind, a failed
  billing execution, an API 5xx), the REST API named after the stack for its metrics;
* the IAM policy of every role Chalice generates (``ROLES``). With ``autogen_policy: false``
  Chalice gives each Lambda function its own role (``<Function>Role``) from
  ``.chalice/policy.json``; a merge REPLACES the role's ``Policies`` list, so the statements of
  that file (CloudWatch Logs) are copied in, followed by the DynamoDB statements PynamoDB needs
  and, per function, what its sources need (least privilege, each on its own resources): a stream
  consumer reads its table's stream and sends to its on-failure queue; a queue consumer receives,
  deletes and re-times messages of its queue; whoever sends jobs (the API, and a queue consumer
  that enqueues its next page) looks up and sends to the consumed queues. Billing: the API and
  ``billing_schedule`` start and describe executions of the billing run; ``billing_render`` puts
  documents in the bucket and sends mail as ``MailFrom``; the API reads documents.

Logical ids come from the names in ``infra/events.py`` and ``infra/billing.py`` by Chalice's own
rule (``chalice.utils.to_cfn_resource_name``): ``subscriptions_stream`` → function
``SubscriptionsStream``, role ``SubscriptionsStreamRole``. ``python -m infra.package`` fails if
the merge template patches a resource Chalice did not generate (a function renamed in
``app.py``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalice.utils import to_cfn_resource_name

from infra import alarms, billing, events
from infra.events import QueueSource, StreamSource

if TYPE_CHECKING:
    from functions.core.persistence import BaseTable

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.json"
POLICY_FILE = ROOT / ".chalice" / "policy.json"

#: Chalice's fixed logical id of the API function's role (the function is ``APIHandler``).
API_ROLE = "ApiHandlerRole"
#: Chalice's fixed logical id of the API (an ``AWS::Serverless::Api``)
REST_API = "RestAPI"

SECRET_PARAMETER = "JwtSecret"
MAIL_FROM_PARAMETER = "MailFrom"
PUBLIC_URL_PARAMETER = "PublicUrl"

#: the billing run's own resources (the functions are Chalice's: ``function_id``)
STATE_MACHINE_ID = "BillingRunStateMachine"
STATE_MACHINE_ROLE = "BillingRunStateMachineRole"
SCHEDULE_RULE = "BillingScheduleRule"
SCHEDULE_PERMISSION = "BillingScheduleInvokePermission"
DOCUMENTS_BUCKET = "DocumentsBucket"

#: What PynamoDB calls on a table (TransactWriteItems and TransactGetItems have no IAM action of
#: their own: a transaction is authorised item by item with Put/Update/Delete/ConditionCheck/Get).
TABLE_ACTIONS: tuple[str, ...] = (
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",  # PynamoDB's first use of a model
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
)
INDEX_ACTIONS: tuple[str, ...] = ("dynamodb:Query",)
#: What Lambda's poller calls on a stream, with the function's role.
STREAM_ACTIONS: tuple[str, ...] = (
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
)
#: ListStreams has no resource-level permission (IAM matches it against "*" only: a statement
#: naming a stream ARN would not grant it), so it gets its own statement; it reveals stream ARNs,
#: nothing of their records.
LIST_STREAMS_ACTIONS: tuple[str, ...] = ("dynamodb:ListStreams",)
#: What Lambda's poller calls on a consumed queue, with the function's role.
CONSUME_ACTIONS: tuple[str, ...] = (
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ReceiveMessage",
)
#: What ``functions.core.queues.Queue`` calls to send a job.
SEND_ACTIONS: tuple[str, ...] = ("sqs:GetQueueUrl", "sqs:SendMessage")
#: What Lambda calls, with the function's role, to deliver to a stream's on-failure destination.
FAILURE_ACTIONS: tuple[str, ...] = ("sqs:SendMessage",)

#: What the state machine's role calls on the Task states' functions.
INVOKE_ACTIONS: tuple[str, ...] = ("lambda:InvokeFunction",)
#: Who starts billing runs (the API, ``billing_schedule``) starts and then looks at executions.
START_ACTIONS: tuple[str, ...] = ("states:StartExecution",)
#: DescribeExecution is authorised on the execution's ARN, not the state machine's.
DESCRIBE_ACTIONS: tuple[str, ...] = ("states:DescribeExecution",)
#: ``billing_render`` stores invoice documents; the API serves them (the document route).
PUT_DOCUMENT_ACTIONS: tuple[str, ...] = ("s3:PutObject",)
GET_DOCUMENT_ACTIONS: tuple[str, ...] = ("s3:GetObject",)
#: ``billing_render`` mails invoices (SES v1 and v2 share these actions).
MAIL_ACTIONS: tuple[str, ...] = ("ses:SendEmail", "ses:SendRawEmail")

#: Kept on dead-letter and on-failure queues: the SQS maximum (R18: kept for a person to inspect).
DEAD_LETTER_RETENTION_S = 14 * 24 * 3600
#: Stream and queue consumers (the API keeps Chalice's ``lambda_timeout``/``lambda_memory_size``).
CONSUMER_TIMEOUT_S = 60
CONSUMER_MEMORY_MB = 512
#: A billing Task rates, numbers or renders one chunk; it gets more time than a stream batch.
BILLING_TASK_TIMEOUT_S = 300


# --- logical ids --------------------------------------------------------------------------------


def _camel(name: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", name)
    return "".join(word[:1].upper() + word[1:] for word in words if word)


def table_id(base_name: str) -> str:
    """``pricelists`` → ``PricelistsTable``."""
    return _camel(base_name) + "Table"


def logical_id(model: type[BaseTable]) -> str:
    """``pricelists`` → ``PricelistsTable``."""
    return table_id(model.base_name)


def queue_id(base_name: str) -> str:
    """``backfill-dlq`` → ``BackfillDlqQueue``."""
    return _camel(base_name) + "Queue"


def function_id(function: str) -> str:
    """The logical id Chalice gives ``app.lambda_function(name=...)``: ``backfill_jobs`` →
    ``BackfillJobs``."""
    return to_cfn_resource_name(function)


def role_id(function: str) -> str:
    """The role Chalice generates for it (``autogen_policy: false``): ``BackfillJobsRole``."""
    return to_cfn_resource_name(f"{function}_role")


def mapping_id(source: StreamSource | QueueSource) -> str:
    """``SubscriptionsStreamFromSubscriptionsTable``, ``BackfillJobsFromBackfillQueue``."""
    if isinstance(source, StreamSource):
        return f"{function_id(source.function)}From{table_id(source.table)}"
    return f"{function_id(source.function)}From{queue_id(source.queue)}"


def consumers(
    streams: Sequence[StreamSource] = events.STREAMS, queues: Sequence[QueueSource] = events.QUEUES
) -> tuple[str, ...]:
    """The names of the functions ``infra/events.py`` feeds, in declaration order."""
    names = [s.function for s in streams] + [q.function for q in queues]
    return tuple(dict.fromkeys(names))


#: The roles Chalice generates: one per Lambda function (``APIHandler`` → ``ApiHandlerRole``,
#: ``backfill_jobs`` → ``BackfillJobsRole``). ``python -m infra.package`` fails if the packaged
#: template has a role missing here (a Lambda function of ``app.py`` in neither
#: ``infra/events.py`` nor ``infra/billing.py``).
ROLES: tuple[str, ...] = (
    API_ROLE,
    *(
        role_id(f)
        for f in dict.fromkeys(
            (*consumers(), *billing.functions(), *(s.function for s in events.SCHEDULES))
        )
    ),
)


# --- names and references -----------------------------------------------------------------------


def stack_name(base_name: str) -> dict[str, str]:
    return {"Fn::Sub": f"${{AWS::StackName}}-{base_name}"}


def table_name(model: type[BaseTable]) -> dict[str, str]:
    return stack_name(model.base_name)


def queue_arn(base_name: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [queue_id(base_name), "Arn"]}


def stream_arn(table: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [table_id(table), "StreamArn"]}


def function_arn(function: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [function_id(function), "Arn"]}


def _states_arn(kind: str, suffix: str = "") -> dict[str, str]:
    name = f"${{AWS::StackName}}-{billing.STATE_MACHINE}"
    return {
        "Fn::Sub": f"arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:"
        f"{kind}:{name}{suffix}"
    }


# The state machine's ARN is built from its name rather than taken with ``Ref``: every function's
# environment carries it (SAM Globals), and the state machine depends on the Task functions
# (``DefinitionSubstitutions``), so a ``Ref`` would make a circular dependency.
def state_machine_arn() -> dict[str, str]:
    """``arn:…:stateMachine:<stack>-billing-run``."""
    return _states_arn("stateMachine")


def execution_arns() -> dict[str, str]:
    """Every execution of the billing run: ``arn:…:execution:<stack>-billing-run:*``."""
    return _states_arn("execution", ":*")


def documents_objects() -> dict[str, str]:
    return {"Fn::Sub": f"${{{DOCUMENTS_BUCKET}.Arn}}/*"}


def _unique(values: Iterable[Any]) -> list[Any]:
    """Dicts (CloudFormation expressions) in first-seen order, each once."""
    seen: dict[str, Any] = {}
    for value in values:
        seen.setdefault(json.dumps(value, sort_keys=True), value)
    return list(seen.values())


# --- IAM ----------------------------------------------------------------------------------------


def _statement(sid: str, actions: Sequence[str], resources: Iterable[Any]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": list(actions), "Resource": _unique(resources)}


def data_statements(models: Sequence[type[BaseTable]]) -> list[dict[str, Any]]:
    tables = [{"Fn::GetAtt": [logical_id(m), "Arn"]} for m in models]
    indexes = [
        {"Fn::Sub": f"${{{logical_id(m)}.Arn}}/index/*"}
        for m in models
        if m._get_schema()["global_secondary_indexes"]
    ]
    statements = [_statement("BssTables", TABLE_ACTIONS, tables)]
    if indexes:
        statements.append(_statement("BssIndexes", INDEX_ACTIONS, indexes))
    return statements


def source_statements(
    function: str | None, streams: Sequence[StreamSource], queues: Sequence[QueueSource]
) -> list[dict[str, Any]]:
    """What a function needs for its sources (``None``: the API, which only sends jobs).

    A job is sent by the API (it starts the work) and by the queue's own consumer (it enqueues the
    next page); nobody else sends to a consumed queue."""
    own_streams = [s for s in streams if s.function == function]
    own_queues = [q for q in queues if q.function == function]
    sent_to = queues if function is None else own_queues
    statements = []
    if own_streams:
        statements += [
            _statement("ReadStreams", STREAM_ACTIONS, [stream_arn(s.table) for s in own_streams]),
            _statement("ListStreams", LIST_STREAMS_ACTIONS, ["*"]),
            _statement(
                "SendStreamFailures",
                FAILURE_ACTIONS,
                [queue_arn(s.on_failure_queue) for s in own_streams],
            ),
        ]
    if own_queues:
        statements.append(
            _statement("ConsumeQueues", CONSUME_ACTIONS, [queue_arn(q.queue) for q in own_queues])
        )
    if sent_to:
        statements.append(
            _statement("SendJobs", SEND_ACTIONS, [queue_arn(q.queue) for q in sent_to])
        )
    return statements


def mail_identities() -> list[dict[str, Any]]:
    """The SES identities mail may be sent as: the ``MailFrom`` address, and its domain (SES
    authorises the identity that is verified, whichever of the two it is)."""
    prefix = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/"
    domain = {"Fn::Select": [1, {"Fn::Split": ["@", {"Ref": MAIL_FROM_PARAMETER}]}]}
    return [
        {"Fn::Sub": f"{prefix}${{{MAIL_FROM_PARAMETER}}}"},
        {"Fn::Sub": [f"{prefix}${{Domain}}", {"Domain": domain}]},
    ]


def billing_statements(function: str | None) -> list[dict[str, Any]]:
    """What a function needs of the billing run beyond the tables (``None``: the API).

    The API starts runs (an admin's request) and serves documents; ``billing_schedule`` starts
    the daily runs; ``billing_render`` writes documents and mails them. The other Task functions
    need the tables only: Step Functions, not they, calls the next step."""
    start = [
        _statement("StartBillingRuns", START_ACTIONS, [state_machine_arn()]),
        _statement("DescribeBillingRuns", DESCRIBE_ACTIONS, [execution_arns()]),
    ]
    if function is None:
        return [
            *start,
            _statement("ReadDocuments", GET_DOCUMENT_ACTIONS, [documents_objects()]),
        ]
    if function == billing.SCHEDULE_FUNCTION:
        return start
    if function == billing.TASKS["BillingRenderFunctionArn"]:
        return [
            _statement("WriteDocuments", PUT_DOCUMENT_ACTIONS, [documents_objects()]),
            _statement("SendInvoiceMail", MAIL_ACTIONS, mail_identities()),
        ]
    return []


#: What the reconciliation's pages call to list the records set aside (R33): the on-failure
#: queue read without consuming it (``VisibilityTimeout=0``), and the named streams' records.
PEEK_ACTIONS: tuple[str, ...] = ("sqs:GetQueueUrl", "sqs:ReceiveMessage")
RECORD_ACTIONS: tuple[str, ...] = ("dynamodb:GetRecords", "dynamodb:GetShardIterator")


def reconciliation_statements(function: str | None) -> list[dict[str, Any]]:
    """What the reconciliation's pages need beyond their queue (R33)."""
    if function != events.RECONCILIATION_PAGES:
        return []
    failures = {s.on_failure_queue for s in events.STREAMS if s.table in events.SET_ASIDE_TABLES}
    return [
        _statement("PeekStreamFailures", PEEK_ACTIONS, [queue_arn(q) for q in sorted(failures)]),
        _statement(
            "ReadSetAsideRecords",
            RECORD_ACTIONS,
            [stream_arn(t) for t in events.SET_ASIDE_TABLES],
        ),
    ]


def failures_statements() -> list[dict[str, Any]]:
    """What the API's ``GET /failures`` reads (issue 16): the on-failure and dead-letter queues
    without consuming them, and the streams' records a set-aside batch names."""
    queues = {s.on_failure_queue for s in events.STREAMS}
    queues |= {q.dead_letter_queue for q in events.QUEUES}
    tables = dict.fromkeys(s.table for s in events.STREAMS)
    return [
        _statement("PeekFailures", PEEK_ACTIONS, [queue_arn(q) for q in sorted(queues)]),
        _statement("ReadFailedRecords", RECORD_ACTIONS, [stream_arn(t) for t in tables]),
    ]


def schedule_source_resources(source: events.ScheduleSource) -> dict[str, Any]:
    """A daily rule → the function, and the permission EventBridge invokes it with."""
    rule = f"{function_id(source.function)}Rule"
    return {
        rule: {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "Description": f"Daily: {source.function}",
                "ScheduleExpression": source.expression,
                "State": "ENABLED",
                "Targets": [
                    {"Id": function_id(source.function), "Arn": function_arn(source.function)}
                ],
            },
        },
        f"{function_id(source.function)}InvokePermission": {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "Action": "lambda:InvokeFunction",
                "FunctionName": {"Ref": function_id(source.function)},
                "Principal": "events.amazonaws.com",
                "SourceArn": {"Fn::GetAtt": [rule, "Arn"]},
            },
        },
    }


#: the storefronts' function: mails the sign-in link of a newly provisioned storefront (R27)
PLANS_FUNCTION = "plans_stream"


def storefront_statements(function: str | None) -> list[dict[str, Any]]:
    """What the storefronts need beyond the tables (``None``: the API): the API stores and serves
    logos (the documents bucket, under ``storefront/``) and mails sign-in links (R30); the plans'
    stream function mails the link of a storefront it opens (R27)."""
    mail = _statement("SendSignInMail", MAIL_ACTIONS, mail_identities())
    if function is None:
        return [_statement("WriteLogos", PUT_DOCUMENT_ACTIONS, [documents_objects()]), mail]
    if function == PLANS_FUNCTION:
        return [mail]
    return []


def role_policies(
    role: str,
    models: Sequence[type[BaseTable]],
    extra: Sequence[dict[str, Any]] = (),
) -> list[dict[str, Any]]:
    chalice_policy = json.loads(POLICY_FILE.read_text())
    return [
        {
            "PolicyName": f"{role}Policy",  # the name Chalice gives it
            "PolicyDocument": {
                "Version": chalice_policy.get("Version", "2012-10-17"),
                "Statement": [
                    *chalice_policy["Statement"],
                    *data_statements(models),
                    *extra,
                ],
            },
        }
    ]


def role_patch(
    role: str, models: Sequence[type[BaseTable]], extra: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """What the merge puts on a Chalice role: its whole ``Policies`` list (a merge replaces it)."""
    return {"Properties": {"Policies": role_policies(role, models, extra)}}


# --- queues and event source mappings -----------------------------------------------------------


def queue_resources(
    names: Sequence[str], streams: Sequence[StreamSource], queues: Sequence[QueueSource]
) -> dict[str, Any]:
    consumed = {q.queue: q for q in queues}
    dead = {q.dead_letter_queue for q in queues} | {s.on_failure_queue for s in streams}
    resources: dict[str, Any] = {}
    for base in names:
        props: dict[str, Any] = {"QueueName": stack_name(base), "SqsManagedSseEnabled": True}
        if base in dead:
            props["MessageRetentionPeriod"] = DEAD_LETTER_RETENTION_S
        source = consumed.get(base)
        if source is not None:
            props["VisibilityTimeout"] = source.visibility_timeout_s
            props["RedrivePolicy"] = {
                "deadLetterTargetArn": queue_arn(source.dead_letter_queue),
                "maxReceiveCount": source.max_receives,
            }
        resources[queue_id(base)] = {"Type": "AWS::SQS::Queue", "Properties": props}
    return resources


# Standalone AWS::Lambda::EventSourceMapping resources rather than SAM ``Events`` merged into
# Chalice's function. Both survive the merge (Chalice's plain functions have no ``Events`` key, so
# the deep merge would add it), but SAM's event buys nothing here: SAM attaches the stream/queue
# permissions only to a role it generates itself, and Chalice passes its own ``Role`` (whose
# Policies this template replaces anyway). A mapping of our own has a logical id we choose (stable
# and testable in sam.json and after translation, where SAM would name it for us), is written in
# CloudFormation's own property names (which cfn-lint checks as they are deployed, with no SAM
# re-mapping in between), and leaves Chalice's function resource alone apart from Timeout and
# MemorySize.
def stream_mapping(source: StreamSource) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::EventSourceMapping",
        "Properties": {
            "FunctionName": {"Ref": function_id(source.function)},
            "EventSourceArn": stream_arn(source.table),
            "StartingPosition": "TRIM_HORIZON",
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BatchSize": source.batch_size,
            "MaximumBatchingWindowInSeconds": source.batching_window_s,
            "MaximumRetryAttempts": source.max_retries,
            "MaximumRecordAgeInSeconds": source.max_record_age_s,
            "BisectBatchOnFunctionError": source.bisect,
            "ParallelizationFactor": source.parallelization,
            "DestinationConfig": {"OnFailure": {"Destination": queue_arn(source.on_failure_queue)}},
        },
    }


def queue_mapping(source: QueueSource) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::EventSourceMapping",
        "Properties": {
            "FunctionName": {"Ref": function_id(source.function)},
            "EventSourceArn": queue_arn(source.queue),
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BatchSize": source.batch_size,
        },
    }


def consumer_timeout(
    function: str, queues: Sequence[QueueSource], default: int = CONSUMER_TIMEOUT_S
) -> int:
    """``CONSUMER_TIMEOUT_S``, lowered for a queue consumer to a sixth of the visibility timeout
    (AWS rejects a mapping whose queue's visibility timeout is below the function's timeout, and
    recommends six times it)."""
    limits = [q.visibility_timeout_s // 6 for q in queues if q.function == function]
    timeout = min([default, *limits])
    if timeout < 1:
        raise ValueError(f"{function}: visibility timeout too short for any function timeout")
    return timeout


# --- the billing run -----------------------------------------------------------------------------


def check_definition(text: str) -> None:
    """Every placeholder of the definition is a Task of ``billing.TASKS``, and every Task is used:
    an unfilled placeholder would reach AWS as a resource named ``${...}``."""
    found = billing.placeholders(text)
    if found != set(billing.TASKS):
        raise ValueError(
            f"{billing.DEFINITION_FILE.name}: placeholders {sorted(found)} "
            f"do not match billing.TASKS {sorted(billing.TASKS)}"
        )


def state_machine(text: str) -> dict[str, Any]:
    return {
        "Type": "AWS::StepFunctions::StateMachine",
        "Properties": {
            "StateMachineName": stack_name(billing.STATE_MACHINE),
            "StateMachineType": "STANDARD",
            "DefinitionString": text,
            "DefinitionSubstitutions": {
                placeholder: function_arn(function)
                for placeholder, function in billing.TASKS.items()
            },
            "RoleArn": {"Fn::GetAtt": [STATE_MACHINE_ROLE, "Arn"]},
        },
    }


def state_machine_role() -> dict[str, Any]:
    """Step Functions may assume it for this account only, and invoke the Task functions only."""
    invoke = _statement(
        "InvokeBillingTasks", INVOKE_ACTIONS, [function_arn(f) for f in billing.TASKS.values()]
    )
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "states.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                        "Condition": {
                            "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
                        },
                    }
                ],
            },
            "Policies": [
                {
                    "PolicyName": f"{STATE_MACHINE_ROLE}Policy",
                    "PolicyDocument": {"Version": "2012-10-17", "Statement": [invoke]},
                }
            ],
        },
    }


def schedule_resources() -> dict[str, Any]:
    """The daily rule → ``billing_schedule``, and the permission EventBridge invokes it with
    (only from this rule)."""
    return {
        SCHEDULE_RULE: {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "Description": "Daily billing run: billing_schedule starts the tenants' runs",
                "ScheduleExpression": billing.SCHEDULE,
                "State": "ENABLED",
                "Targets": [
                    {
                        "Id": function_id(billing.SCHEDULE_FUNCTION),
                        "Arn": function_arn(billing.SCHEDULE_FUNCTION),
                    }
                ],
            },
        },
        SCHEDULE_PERMISSION: {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "Action": "lambda:InvokeFunction",
                "FunctionName": {"Ref": function_id(billing.SCHEDULE_FUNCTION)},
                "Principal": "events.amazonaws.com",
                "SourceArn": {"Fn::GetAtt": [SCHEDULE_RULE, "Arn"]},
            },
        },
    }


def documents_bucket() -> dict[str, Any]:
    """Invoice documents: private (the API hands them out), encrypted, versioned (an invoice
    document is never silently replaced) and kept when the stack goes, like the tables. No
    ``BucketName``: bucket names are global, CloudFormation picks a unique one."""
    return {
        "Type": "AWS::S3::Bucket",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "VersioningConfiguration": {"Status": "Enabled"},
        },
    }


def billing_resources(text: str) -> dict[str, Any]:
    check_definition(text)
    return {
        STATE_MACHINE_ID: state_machine(text),
        STATE_MACHINE_ROLE: state_machine_role(),
        **schedule_resources(),
        DOCUMENTS_BUCKET: documents_bucket(),
    }


def parameters() -> dict[str, Any]:
    return {
        SECRET_PARAMETER: {
            "Type": "String",
            "NoEcho": True,
            "MinLength": 32,
            "Description": "HS256 secret the API checks bearer tokens with (>= 32 chars)",
        },
        MAIL_FROM_PARAMETER: {
            "Type": "String",
            "AllowedPattern": r"^[^@\s<>]+@[^@\s<>]+$",
            "ConstraintDescription": "a bare email address, e.g. billing@example.com",
            "Description": "Sender of invoice mail: an SES-verified address or one of a verified "
            "domain",
        },
        PUBLIC_URL_PARAMETER: {
            "Type": "String",
            "AllowedPattern": r"^https?://\S+$",
            "ConstraintDescription": "an http(s) URL",
            "Description": "The API's base URL, for the links in invoice mail",
        },
    }


def environment() -> dict[str, Any]:
    """What every function reads (``functions.core.settings``), in SAM ``Globals``."""
    return {
        "BSS_TABLE_PREFIX": {"Ref": "AWS::StackName"},
        "BSS_JWT_SECRET": {"Ref": SECRET_PARAMETER},
        "BSS_BILLING_STATE_MACHINE": state_machine_arn(),
        "BSS_DOCUMENTS_BUCKET": {"Ref": DOCUMENTS_BUCKET},
        "BSS_MAIL_FROM": {"Ref": MAIL_FROM_PARAMETER},
        "BSS_PUBLIC_URL": {"Ref": PUBLIC_URL_PARAMETER},
    }


def check_sources(models: Sequence[type[BaseTable]], streams: Sequence[StreamSource]) -> None:
    streamed = {m.base_name: m.streamed for m in models}
    for source in streams:
        if source.table not in streamed:
            raise ValueError(f"{source.function} reads table {source.table!r}: no such model")
        if not streamed[source.table]:
            raise ValueError(f"{source.function} reads table {source.table!r}: it has no stream")


# --- the API Gateway's own answers (R29) -------------------------------------------------------


def _error_template(code: str, message: str) -> str:
    """A gateway response body: the error object of SPEC §9. ``message`` is a JSON string, or
    ``$context.error.messageString`` (API Gateway's message, quoted)."""
    return '{"error":{"code":' + json.dumps(code) + ',"message":' + message + "}}"


def gateway_responses() -> dict[str, Any]:
    """``x-amazon-apigateway-gateway-responses``: what API Gateway answers itself, as the error
    object of SPEC §9."""
    from functions.core.errors import path_not_found

    missing = path_not_found()
    absent = {
        "statusCode": str(missing.status),
        "responseTemplates": {
            "application/json": _error_template(missing.code, json.dumps(missing.message))
        },
    }
    gateway_message = "$context.error.messageString"
    return {
        # a path the API lacks (every path has ANY: never a method it lacks)
        "MISSING_AUTHENTICATION_TOKEN": absent,
        # the same, when the request carries an Authorization header that is not SigV4
        "INCOMPLETE_SIGNATURE": absent,
        "REQUEST_TOO_LARGE": {
            "statusCode": "413",
            "responseTemplates": {
                "application/json": _error_template("payload_too_large", gateway_message)
            },
        },
        "DEFAULT_4XX": {
            "responseTemplates": {
                "application/json": _error_template("gateway_error", gateway_message)
            }
        },
        "DEFAULT_5XX": {
            "responseTemplates": {
                "application/json": _error_template("internal_error", gateway_message)
            }
        },
    }


def api_patch() -> dict[str, Any]:
    """The patch of Chalice's ``RestAPI``: its gateway responses, and an ``ANY`` method on every
    path with the integration Chalice gives the path's methods (the API's function): the app
    answers a method the path lacks with 405 and ``Allow``, in the error object
    (``functions.core.api.error_object``)."""
    from chalice.deploy.swagger import CFNSwaggerGenerator

    from app import app

    swagger = CFNSwaggerGenerator().generate_swagger(app)
    paths: dict[str, Any] = {}
    for path, methods in sorted(swagger["paths"].items()):
        first = methods[sorted(methods)[0]]
        keys = ("parameters", "responses", "x-amazon-apigateway-integration")
        paths[path] = {"x-amazon-apigateway-any-method": {k: first[k] for k in keys if k in first}}
    return {
        "Properties": {
            # named after the stack, so its metrics (the 5xx alarm's ApiName) are found
            "Name": {"Ref": "AWS::StackName"},
            "DefinitionBody": {
                "x-amazon-apigateway-gateway-responses": gateway_responses(),
                "paths": paths,
            },
        }
    }


# --- the whole ----------------------------------------------------------------------------------


def build(models: Sequence[type[BaseTable]] | None = None) -> dict[str, Any]:
    from functions.core.persistence import table_resource

    if models is None:
        from functions.composition import models as all_models

        models = all_models()
    streams, queues, queue_names = events.STREAMS, events.QUEUES, events.queue_names()
    check_sources(models, streams)
    ordered = sorted(models, key=lambda m: m.base_name)
    parts: list[tuple[str, Any]] = [
        (logical_id(m), table_resource(m, table_name(m))) for m in ordered
    ]
    parts += sorted(queue_resources(queue_names, streams, queues).items())
    parts += [(mapping_id(s), stream_mapping(s)) for s in streams]
    parts += [(mapping_id(q), queue_mapping(q)) for q in queues]
    parts += sorted(billing_resources(billing.definition()).items())
    # the API sends jobs (source_statements(None, ...)) and starts billing runs; each consumer
    # gets what its sources need, each billing function what its step needs
    api_statements = (
        source_statements(None, streams, queues)
        + billing_statements(None)
        + storefront_statements(None)
        + failures_statements()
    )
    parts.append((API_ROLE, role_patch(API_ROLE, models, api_statements)))
    parts.append((REST_API, api_patch()))
    for function in consumers(streams, queues):
        statements = source_statements(function, streams, queues)
        statements += storefront_statements(function)
        statements += reconciliation_statements(function)
        parts.append((role_id(function), role_patch(role_id(function), models, statements)))
        properties = {
            "Timeout": consumer_timeout(function, queues),
            "MemorySize": CONSUMER_MEMORY_MB,
        }
        parts.append((function_id(function), {"Properties": properties}))
    for function in billing.functions():
        statements = billing_statements(function)
        parts.append((role_id(function), role_patch(role_id(function), models, statements)))
        scheduler = function == billing.SCHEDULE_FUNCTION
        properties = {
            "Timeout": CONSUMER_TIMEOUT_S if scheduler else BILLING_TASK_TIMEOUT_S,
            "MemorySize": CONSUMER_MEMORY_MB,
        }
        parts.append((function_id(function), {"Properties": properties}))
    for schedule in events.SCHEDULES:
        parts += sorted(schedule_source_resources(schedule).items())
        sends = [_statement("SendJobs", SEND_ACTIONS, [queue_arn(q) for q in schedule.sends_to])]
        role = role_id(schedule.function)
        parts.append((role, role_patch(role, models, sends)))
        properties = {"Timeout": CONSUMER_TIMEOUT_S, "MemorySize": CONSUMER_MEMORY_MB}
        parts.append((function_id(schedule.function), {"Properties": properties}))
    parts += sorted(
        alarms.resources(
            queue_id=queue_id,
            function_id=function_id,
            state_machine=STATE_MACHINE_ID,
            rest_api_name={"Ref": "AWS::StackName"},
        ).items()
    )
    ids = [name for name, _ in parts]
    if len(set(ids)) != len(ids):
        raise ValueError(f"two resources map to the same logical id: {sorted(ids)}")
    outputs: dict[str, Any] = {
        f"{logical_id(m)}Name": {"Value": {"Ref": logical_id(m)}} for m in ordered
    }
    outputs.update(
        {f"{queue_id(base)}Url": {"Value": {"Ref": queue_id(base)}} for base in queue_names}
    )
    outputs[f"{STATE_MACHINE_ID}Arn"] = {"Value": {"Ref": STATE_MACHINE_ID}}
    outputs[f"{DOCUMENTS_BUCKET}Name"] = {"Value": {"Ref": DOCUMENTS_BUCKET}}
    outputs[alarms.ALARM_TOPIC] = {"Value": {"Ref": alarms.ALARM_TOPIC}}
    return {
        "Parameters": {**parameters(), **alarms.parameter()},
        "Globals": {"Function": {"Environment": {"Variables": environment()}}},
        "Resources": dict(parts),
        "Outputs": outputs,
    }


def render(template: dict[str, Any]) -> str:
    return json.dumps(template, indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.template", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args(argv)
    template = build()
    text = render(template)
    if args.check:
        if not TEMPLATE.exists() or TEMPLATE.read_text() != text:
            print(f"{TEMPLATE} is stale: run python -m infra.template", file=sys.stderr)
            return 1
        print(f"{TEMPLATE} is up to date")
        return 0
    TEMPLATE.write_text(text)
    print(f"wrote {TEMPLATE.relative_to(ROOT)} ({len(tables_of(template))} tables)")
    return 0


def tables_of(template: dict[str, Any]) -> list[str]:
    """The logical ids of the tables of a template."""
    return [
        name
        for name, resource in template.get("Resources", {}).items()
        if resource.get("Type") == "AWS::DynamoDB::Table"
    ]


if __name__ == "__main__":
    sys.exit(main())

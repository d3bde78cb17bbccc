"""The stack's alarms (issue 16): an operator is told, by email through one SNS topic, when
something needs a person.

* every on-failure queue (a stream record set aside after its retries, R18) and every
  dead-letter queue (a job message that failed ``max_receives`` times) holding a message:
  ``ApproximateNumberOfMessagesVisible`` > 0;
* every stream consumer falling behind: Lambda's ``IteratorAge`` over 5 minutes (a stream keeps
  records 24 h: a consumer that stays behind loses them);
* a billing run's execution failing (``ExecutionsFailed`` of the state machine, R24);
* the API answering a 5xx (``5XXError`` of the REST API: the app answers every bad input with a
  4xx, so a 5xx is a defect or an outage).

The topic's email is the ``AlarmEmail`` parameter (the subscription must be confirmed from the
mail AWS sends). Missing data is "not breaching": a quiet queue publishes nothing. Pure data: no
AWS import; ``infra/template.py`` merges it.
"""

from __future__ import annotations

from typing import Any

from infra import events

ALARM_TOPIC = "AlarmTopic"
ALARM_EMAIL_PARAMETER = "AlarmEmail"
#: a stream consumer this far behind is alarmed (ms): 5 minutes
ITERATOR_AGE_LIMIT_MS = 5 * 60 * 1000
PERIOD_S = 60


def failure_queues() -> tuple[str, ...]:
    """The queues a message lands on when it needs a person: the streams' on-failure queues and
    the consumed queues' dead-letter queues (base names)."""
    names = [source.on_failure_queue for source in events.STREAMS]
    names += [source.dead_letter_queue for source in events.QUEUES]
    return tuple(dict.fromkeys(names))


def parameter() -> dict[str, Any]:
    return {
        ALARM_EMAIL_PARAMETER: {
            "Type": "String",
            "AllowedPattern": r"^[^@\s<>]+@[^@\s<>]+$",
            "ConstraintDescription": "a bare email address, e.g. ops@example.com",
            "Description": "Who is mailed when an alarm fires (a failure or dead-letter queue "
            "holds a message, a stream consumer is 5 minutes behind, a billing run failed, "
            "the API answered a 5xx)",
        }
    }


def _alarm(
    description: str,
    namespace: str,
    metric: str,
    dimensions: list[dict[str, Any]],
    *,
    statistic: str,
    threshold: float,
) -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": description,
            "Namespace": namespace,
            "MetricName": metric,
            "Dimensions": dimensions,
            "Statistic": statistic,
            "Period": PERIOD_S,
            "EvaluationPeriods": 1,
            "Threshold": threshold,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": ALARM_TOPIC}],
            "OKActions": [{"Ref": ALARM_TOPIC}],
        },
    }


def resources(
    *,
    queue_id: Any,
    function_id: Any,
    state_machine: str,
    rest_api_name: dict[str, Any],
) -> dict[str, Any]:
    """The topic, its email subscription and the alarms (logical id → resource); the logical
    ids of queues and functions come from ``infra/template.py``'s naming functions."""
    found: dict[str, Any] = {
        ALARM_TOPIC: {
            "Type": "AWS::SNS::Topic",
            "Properties": {
                "DisplayName": "BSS alarms",
                "Subscription": [{"Protocol": "email", "Endpoint": {"Ref": ALARM_EMAIL_PARAMETER}}],
            },
        }
    }
    for base in failure_queues():
        queue = queue_id(base)
        found[f"{queue}DepthAlarm"] = _alarm(
            f"{base}: a message is waiting for a person (a record or job set aside)",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}],
            statistic="Maximum",
            threshold=0,
        )
    for source in events.STREAMS:
        function = function_id(source.function)
        found[f"{function}IteratorAgeAlarm"] = _alarm(
            f"{source.function}: the {source.table} stream's consumer is over 5 minutes behind",
            "AWS/Lambda",
            "IteratorAge",
            [{"Name": "FunctionName", "Value": {"Ref": function}}],
            statistic="Maximum",
            threshold=ITERATOR_AGE_LIMIT_MS,
        )
    found["BillingRunFailedAlarm"] = _alarm(
        "a billing run's execution failed (R24): resume it with POST /billing-runs",
        "AWS/States",
        "ExecutionsFailed",
        [{"Name": "StateMachineArn", "Value": {"Ref": state_machine}}],
        statistic="Sum",
        threshold=0,
    )
    found["Api5xxAlarm"] = _alarm(
        "the API answered a 5xx",
        "AWS/ApiGateway",
        "5XXError",
        [{"Name": "ApiName", "Value": rest_api_name}],
        statistic="Sum",
        threshold=0,
    )
    return found

"""The merge template for ``chalice package --merge-template``, generated from the models.

    python -m infra.template            # writes infra/template.json (commit it)
    python -m infra.template --check    # exits 1 if infra/template.json is stale

What it adds to Chalice's SAM template:

* one ``AWS::DynamoDB::Table`` per model of ``functions.composition.models()``, named
  ``${AWS::StackName}-<base_name>`` (``table_resource``; streamed models get NEW_AND_OLD_IMAGES);
* the ``JwtSecret`` parameter (NoEcho) and, in SAM ``Globals``, the environment of every function:
  ``BSS_TABLE_PREFIX`` = the stack name (so the app finds the tables above) and ``BSS_JWT_SECRET``;
* the IAM policy of every role Chalice generates. With ``autogen_policy: false`` Chalice gives each
  Lambda function its own role (``<Function>Role``) from ``.chalice/policy.json``; a merge
  REPLACES the role's ``Policies`` list, so the statements of that file (CloudWatch Logs) are
  copied in, followed by the DynamoDB statements PynamoDB needs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from functions.core.persistence import BaseTable

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.json"
POLICY_FILE = ROOT / ".chalice" / "policy.json"

#: The roles Chalice generates: one per Lambda function (``APIHandler`` → ``ApiHandlerRole``).
#: ``python -m infra.package`` fails if the packaged template has a role missing here.
ROLES: tuple[str, ...] = ("ApiHandlerRole",)

SECRET_PARAMETER = "JwtSecret"

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


def logical_id(model: type[BaseTable]) -> str:
    """``pricelists`` → ``PricelistsTable``."""
    words = re.split(r"[^A-Za-z0-9]+", model.base_name)
    return "".join(word[:1].upper() + word[1:] for word in words if word) + "Table"


def table_name(model: type[BaseTable]) -> dict[str, str]:
    return {"Fn::Sub": f"${{AWS::StackName}}-{model.base_name}"}


def data_statements(models: Sequence[type[BaseTable]]) -> list[dict[str, Any]]:
    tables = [{"Fn::GetAtt": [logical_id(m), "Arn"]} for m in models]
    indexes = [
        {"Fn::Sub": f"${{{logical_id(m)}.Arn}}/index/*"}
        for m in models
        if m._get_schema()["global_secondary_indexes"]
    ]
    statements: list[dict[str, Any]] = [
        {
            "Sid": "BssTables",
            "Effect": "Allow",
            "Action": list(TABLE_ACTIONS),
            "Resource": tables,
        }
    ]
    if indexes:
        statements.append(
            {
                "Sid": "BssIndexes",
                "Effect": "Allow",
                "Action": list(INDEX_ACTIONS),
                "Resource": indexes,
            }
        )
    return statements


def role_policies(role: str, models: Sequence[type[BaseTable]]) -> list[dict[str, Any]]:
    chalice_policy = json.loads(POLICY_FILE.read_text())
    return [
        {
            "PolicyName": f"{role}Policy",  # the name Chalice gives it
            "PolicyDocument": {
                "Version": chalice_policy.get("Version", "2012-10-17"),
                "Statement": [*chalice_policy["Statement"], *data_statements(models)],
            },
        }
    ]


def build(models: Sequence[type[BaseTable]] | None = None) -> dict[str, Any]:
    from functions.core.persistence import table_resource

    if models is None:
        from functions.composition import models as all_models

        models = all_models()
    ids = [logical_id(m) for m in models]
    if len(set(ids)) != len(ids):
        raise ValueError(f"two models map to the same resource: {ids}")

    resources: dict[str, Any] = {
        logical_id(m): table_resource(m, table_name(m))
        for m in sorted(models, key=lambda m: m.base_name)
    }
    for role in ROLES:
        resources[role] = {"Properties": {"Policies": role_policies(role, models)}}
    return {
        "Parameters": {
            SECRET_PARAMETER: {
                "Type": "String",
                "NoEcho": True,
                "MinLength": 32,
                "Description": "HS256 secret the API checks bearer tokens with (>= 32 chars)",
            }
        },
        "Globals": {
            "Function": {
                "Environment": {
                    "Variables": {
                        "BSS_TABLE_PREFIX": {"Ref": "AWS::StackName"},
                        "BSS_JWT_SECRET": {"Ref": SECRET_PARAMETER},
                    }
                }
            }
        },
        "Resources": resources,
        "Outputs": {
            f"{logical_id(m)}Name": {"Value": {"Ref": logical_id(m)}}
            for m in sorted(models, key=lambda m: m.base_name)
        },
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

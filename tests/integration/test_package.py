"""The deployment package (``python -m infra.package``): the merge template matches the models, the
zip carries ``functions/`` with its bytecode and runs on its own, and the template lints and
translates. The packaging tests build into a temporary directory (chalice package downloads the
manylinux wheels from PyPI the first time; later runs use ``.chalice/deployments``)."""

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


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Package:
    from infra.package import build

    return build(tmp_path_factory.mktemp("package") / "out")


@pytest.mark.package
def test_zip_holds_functions_and_unchecked_hash_bytecode(package: Package) -> None:
    with zipfile.ZipFile(package.zip_path) as archive:
        names = set(archive.namelist())
        assert {"app.py", "functions/composition.py", "functions/core/api.py"} <= names
        assert {"chalice/app.py", "pynamodb/models.py", "jwt/__init__.py"} <= names
        sources = [n for n in names if n.endswith(".py")]
        without_pyc = [n for n in sources if importlib.util.cache_from_source(n) not in names]
        assert not without_pyc, f"modules without bytecode: {without_pyc[:10]}"
        header = archive.read(importlib.util.cache_from_source("functions/core/api.py"))[:8]
    assert header[:4] == importlib.util.MAGIC_NUMBER  # compiled by this (the runtime's) Python
    assert int.from_bytes(header[4:8], "little") == 0b01  # hash-based, source not checked
    assert not [n for n in names if n.endswith(".pyc") and "__pycache__" not in n]


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
    assert function["Environment"]["Variables"] == {
        "BSS_TABLE_PREFIX": {"Ref": "AWS::StackName"},
        "BSS_JWT_SECRET": {"Ref": "JwtSecret"},
    }
    policies = resources["ApiHandlerRole"]["Properties"]["Policies"]
    actions = {
        action
        for policy in policies
        for statement in policy["PolicyDocument"]["Statement"]
        for action in statement["Action"]
    }
    assert {"logs:CreateLogStream", "logs:PutLogEvents"} <= actions  # kept through the merge
    assert {"dynamodb:DescribeTable", "dynamodb:ConditionCheckItem", "dynamodb:Query"} <= actions


# Runs with `python -I -S`: no site-packages, no repo, no PYTHON* variables; only the unpacked zip
# (argv[1]) and the standard library. Imports the app, then serves two requests through the Lambda
# entry point (the first request builds the container: settings, PynamoDB models).
ISOLATED = r"""
import json, sys, sysconfig
task = sys.argv[1]
sys.path.insert(0, task)

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

stdlib = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib")}
files = [getattr(m, "__file__", None) for m in list(sys.modules.values())]
foreign = sorted(
    f for f in files
    if f and not f.startswith(task)
    and (not any(f.startswith(d) for d in stdlib) or "site-packages" in f)
)
print(json.dumps({"statuses": statuses, "tables": tables, "foreign": foreign,
                  "app": app.__file__, "path": sys.path}))
"""


def tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.package
def test_unpacked_zip_imports_and_serves_on_its_own(package: Package, tmp_path: Path) -> None:
    from functions.composition import models

    task = tmp_path / "task"
    task.mkdir()
    assert not any(task.iterdir())
    with zipfile.ZipFile(package.zip_path) as archive:
        archive.extractall(task)
    before = tree(task)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_REGION": "us-east-1",
        "BSS_TABLE_PREFIX": "pkg",
        "BSS_JWT_SECRET": "package-test-secret-0123456789abcdef",
    }
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", ISOLATED, str(task)],
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
    assert result["foreign"] == [], "modules loaded from outside the zip and the stdlib"
    assert not [p for p in result["path"] if str(ROOT) in p or "site-packages" in p]
    assert tree(task) == before, "the import wrote files: some module had no usable .pyc"

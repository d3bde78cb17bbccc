"""The deployment package (``make package``): Chalice's zips and SAM template, checked.

    python -m infra.package [--out build/package] [--stage dev]

1. checks ``infra/template.json`` is what ``python -m infra.template`` generates now;
2. removes ``__pycache__`` from the code Chalice zips (``app.py`` and ``functions/``, which
   Chalice reaches through the ``vendor/functions`` symlink);
3. ``chalice package --merge-template infra/template.json`` (a region, no credentials), which
   writes the function zip and, with ``automatic_layer``, a layer of the dependencies; the app's
   own code moves to the function zip and what the Lambda runtime provides (boto3, botocore)
   or no function needs (Pillow) is left out (``infra/layer.py``); the function zip must stay
   within 10 MB and both unpacked within Lambda's 250 MB;
4. adds to both zips the bytecode of every module, compiled by this interpreter (the version of the
   Lambda runtime, which Chalice takes from it too) in ``unchecked-hash`` mode: Lambda's file
   system is read-only, so without .pyc in the zip every cold start compiles every module again;
5. cfn-lint on the SAM template, SAM translation (aws-sam-translator, no AWS calls), then cfn-lint
   on the translated CloudFormation (its IAM action checks are skipped on SAM templates);
6. checks every IAM role Chalice generated (every role Lambda assumes) carries the DynamoDB
   policy (``ROLES`` of ``infra/template.py``), and that every resource the merge template
   patches (the roles, and the Timeout/MemorySize of the functions ``infra/events.py`` and
   ``infra/billing.py`` name) is one Chalice generated: a function renamed in ``app.py`` would
   otherwise leave a resource without a ``Type``.

Any finding is an error (exit 1).
"""

from __future__ import annotations

import argparse
import compileall
import copy
import json
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.util import cache_from_source
from pathlib import Path
from typing import Any

from infra import layer
from infra import template as merge

ROOT = merge.ROOT
DEFAULT_OUT = ROOT / "build" / "package"
DEFAULT_REGION = "us-east-1"
#: where ``aws cloudformation package`` would upload the zips; only used to translate the template
PLACEHOLDER_CODE_URI = "s3://bss-deployment-artifacts/deployment.zip"
PLACEHOLDER_LAYER_URI = "s3://bss-deployment-artifacts/layer-deployment.zip"
#: pyc written as -rw-r--r--, like the files Chalice zips
PYC_MODE = 0o100644 << 16


class PackageError(RuntimeError):
    pass


@dataclass
class Package:
    zip_path: Path
    layer_path: Path
    template_path: Path
    left_out: set[str] = field(default_factory=set)
    pyc_files: int = 0
    lint_findings: list[str] = field(default_factory=list)
    translated: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def zip_bytes(self) -> int:
        return self.zip_path.stat().st_size

    @property
    def layer_bytes(self) -> int:
        return self.layer_path.stat().st_size


# --- steps ------------------------------------------------------------------------------------


def check_merge_template() -> None:
    expected = merge.render(merge.build())
    if not merge.TEMPLATE.exists() or merge.TEMPLATE.read_text() != expected:
        raise PackageError(
            f"{merge.TEMPLATE.relative_to(ROOT)} does not match the models: "
            "run `python -m infra.template` and commit the result"
        )


def remove_pycache(root: Path = ROOT) -> None:
    """Stale bytecode of the app's own code must not reach the zip (it is compiled afresh)."""
    caches = [root / "__pycache__", *(root / "functions").rglob("__pycache__")]
    for cache in caches:
        shutil.rmtree(cache, ignore_errors=True)


def chalice_package(out: Path, stage: str) -> None:
    env = dict(os.environ)
    if not env.get("AWS_DEFAULT_REGION"):
        env["AWS_DEFAULT_REGION"] = env.get("AWS_REGION") or DEFAULT_REGION
    chalice = Path(sys.executable).with_name("chalice")
    command = [str(chalice) if chalice.exists() else "chalice", "--project-dir", str(ROOT)]
    command += ["package", "--stage", stage, "--merge-template", str(merge.TEMPLATE), str(out)]
    if out.exists():
        shutil.rmtree(out)
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise PackageError(f"chalice package failed:\n{result.stdout}{result.stderr}")


def _stale(name: str) -> bool:
    return "/__pycache__/" in f"/{name}" or name.endswith((".pyc", ".pyo"))


def add_bytecode(zip_path: Path) -> int:
    """Add a ``__pycache__/<module>.cpython-3XY.pyc`` beside every module of the zip; returns how
    many. ``unchecked-hash`` pycs are used without comparing them with the source's mtime.

    The pycs are appended (Chalice's entries are not recompressed); bytecode already in the zip
    (a ``__pycache__`` written between the clean-up and Chalice's zipping) is dropped first."""
    with zipfile.ZipFile(zip_path) as source:
        stale = any(_stale(name) for name in source.namelist())
    if stale:
        _rebuild_without_bytecode(zip_path)
    with tempfile.TemporaryDirectory(prefix="bss-zip-") as tmp:
        work = Path(tmp)
        with zipfile.ZipFile(zip_path) as source:
            modules = [name for name in source.namelist() if name.endswith(".py")]
            for name in modules:
                source.extract(name, work)
        compileall.compile_dir(
            work,
            quiet=2,
            workers=0,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        failed = [m for m in modules if not (work / cache_from_source(m)).exists()]
        if failed:
            raise PackageError(f"{len(failed)} module(s) do not compile: {failed[:10]}")
        with zipfile.ZipFile(zip_path, "a", zipfile.ZIP_DEFLATED) as target:
            for module in modules:
                pyc = cache_from_source(module)
                info = zipfile.ZipInfo(pyc, date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = PYC_MODE
                info.compress_type = zipfile.ZIP_DEFLATED
                target.writestr(info, (work / pyc).read_bytes())
        return len(modules)


def _rebuild_without_bytecode(zip_path: Path) -> None:
    rebuilt = zip_path.with_suffix(".tmp")
    with zipfile.ZipFile(zip_path) as source, zipfile.ZipFile(rebuilt, "w") as target:
        for info in source.infolist():
            if not _stale(info.filename):
                target.writestr(info, source.read(info), compress_type=info.compress_type)
    rebuilt.replace(zip_path)


def cfn_lint(template: dict[str, Any], region: str) -> list[str]:
    from cfnlint.api import lint

    matches = lint(json.dumps(template), regions=[region])
    return [str(match) for match in matches]


class StaticManagedPolicies:
    """aws-sam-translator's managed-policy map without an IAM ListPolicies call (the template
    names no managed policy today; add one here if a function's ``Policies`` ever does)."""

    POLICIES = {
        "AWSLambdaBasicExecutionRole": (
            "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
        ),
    }

    def load(self) -> dict[str, str]:
        return dict(self.POLICIES)


def sam_translate(template: dict[str, Any], region: str) -> dict[str, Any]:
    """SAM → CloudFormation, as the ``AWS::Serverless-2016-10-31`` transform would do it."""
    from boto3.session import Session
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import (
        to_py27_compatible_template,
        undo_mark_unicode_str_in_template,
    )

    fragment = copy.deepcopy(template)
    for resource in fragment.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = PLACEHOLDER_CODE_URI
        elif resource.get("Type") == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = PLACEHOLDER_LAYER_URI
    parameters: dict[str, Any] = {}
    to_py27_compatible_template(fragment, parameters)  # as samtranslator's transform() does
    translator = Translator(None, Parser(), boto_session=Session(region_name=region))
    try:
        translated: dict[str, Any] = undo_mark_unicode_str_in_template(
            translator.translate(
                fragment, parameters, get_managed_policy_map=StaticManagedPolicies().load
            )
        )
    except InvalidDocumentException as error:
        causes = "\n".join(f"  {cause.message}" for cause in error.causes)
        raise PackageError(f"SAM translation failed:\n{causes}") from error
    return translated


def roles_without_data_policy(template: dict[str, Any]) -> list[str]:
    """The IAM roles Chalice generated that the merge template did not give the policy: every role
    Lambda assumes (the state machine's role, which Step Functions assumes, is not one)."""
    missing = []
    for name, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::IAM::Role" or not _lambda_role(resource):
            continue
        statements = [
            statement
            for policy in resource["Properties"].get("Policies", [])
            for statement in policy["PolicyDocument"]["Statement"]
        ]
        actions = {a for s in statements for a in _as_list(s.get("Action"))}
        if not {"dynamodb:PutItem", "logs:PutLogEvents"} <= actions:
            missing.append(name)
    return missing


def _lambda_role(role: dict[str, Any]) -> bool:
    trust = role.get("Properties", {}).get("AssumeRolePolicyDocument", {})
    principals = [s.get("Principal", {}) for s in _as_list(trust.get("Statement", []))]
    services = {
        service
        for principal in principals
        if isinstance(principal, dict)
        for service in _as_list(principal.get("Service", []))
    }
    return "lambda.amazonaws.com" in services


def patched_but_not_generated(template: dict[str, Any]) -> list[str]:
    """Resources the merge template patched (no ``Type`` of its own) that Chalice did not make."""
    return [
        name for name, resource in template.get("Resources", {}).items() if "Type" not in resource
    ]


def without_layer(template: dict[str, Any]) -> list[str]:
    """The functions that do not name the dependencies' layer (they could not import them)."""
    resources = template.get("Resources", {})
    layers = [n for n, r in resources.items() if r.get("Type") == "AWS::Serverless::LayerVersion"]
    return [
        name
        for name, resource in resources.items()
        if resource.get("Type") == "AWS::Serverless::Function"
        and [{"Ref": n} for n in layers] != resource["Properties"].get("Layers")
    ]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- the whole ----------------------------------------------------------------------------------


def build(out: Path = DEFAULT_OUT, stage: str = "dev") -> Package:
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or DEFAULT_REGION
    timings: dict[str, float] = {}

    def timed(step: str, started: float) -> None:
        timings[step] = time.perf_counter() - started

    started = time.perf_counter()
    check_merge_template()
    remove_pycache()
    chalice_package(out, stage)
    timed("chalice package", started)
    package = Package(
        zip_path=out / "deployment.zip",
        layer_path=out / "layer-deployment.zip",
        template_path=out / "sam.json",
    )
    if not package.layer_path.exists():
        raise PackageError("Chalice wrote no layer: is automatic_layer on in .chalice/config.json?")
    package.left_out = layer.split(package.zip_path, package.layer_path).left_out

    started = time.perf_counter()
    package.pyc_files = add_bytecode(package.zip_path) + add_bytecode(package.layer_path)
    timed("bytecode", started)
    if package.zip_bytes > layer.MAX_FUNCTION_ZIP_BYTES:
        raise PackageError(
            f"the function zip is {package.zip_bytes / 1e6:.1f} MB, over "
            f"{layer.MAX_FUNCTION_ZIP_BYTES / 1e6:.0f} MB: dependencies belong in the layer"
        )
    unpacked = layer.unpacked_bytes(package.zip_path, package.layer_path)
    if unpacked > layer.MAX_UNPACKED_BYTES:
        raise PackageError(f"function and layer unpack to {unpacked / 2**20:.0f} MiB (≤ 250)")

    started = time.perf_counter()
    template = json.loads(package.template_path.read_text())
    strays = patched_but_not_generated(template)
    if strays:
        raise PackageError(
            f"infra/template.json patches {strays} but Chalice generated no such resource: "
            "does app.py still declare every function of infra/events.py under that name?"
        )
    findings = [f"sam.json: {finding}" for finding in cfn_lint(template, region)]
    findings += [
        f"sam.json: function {name} does not use the layer" for name in without_layer(template)
    ]
    missing = roles_without_data_policy(template)
    findings += [
        f"sam.json: role {role} lacks the DynamoDB policy: add its function to infra/events.py "
        "(or the role to ROLES in infra/template.py)"
        for role in missing
    ]
    package.translated = sam_translate(template, region)
    findings += [f"translated: {f}" for f in cfn_lint(package.translated, region)]
    package.lint_findings = findings
    timed("cfn-lint + SAM translation", started)
    package.timings = timings
    return package


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.package", description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument("--stage", default="dev", help="Chalice stage")
    args = parser.parse_args(argv)
    try:
        package = build(args.out.resolve(), args.stage)
    except PackageError as error:
        print(f"package: {error}", file=sys.stderr)
        return 1
    for finding in package.lint_findings:
        print(finding, file=sys.stderr)
    if package.lint_findings:
        print(f"package: {len(package.lint_findings)} finding(s)", file=sys.stderr)
        return 1
    resources = package.translated.get("Resources", {})
    print(f"function: {_shown(package.zip_path)} ({package.zip_bytes / 1e6:.2f} MB)")
    print(
        f"layer:    {_shown(package.layer_path)} ({package.layer_bytes / 1e6:.1f} MB; left out: "
        f"{', '.join(sorted(package.left_out))})"
    )
    print(f"bytecode: {package.pyc_files} .pyc in the two zips")
    print(
        f"template: {_shown(package.template_path)} (SAM; cfn-lint clean, translates to "
        f"{len(resources)} CloudFormation resources)"
    )
    print("timings:  " + ", ".join(f"{k} {v:.1f} s" for k, v in package.timings.items()))
    return 0


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())

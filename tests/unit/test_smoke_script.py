"""``infra/smoke.sh`` (issue 16), which deploys and smokes the stack on a real AWS account: it
cannot run here, so these check that bash parses it, that ``--help`` needs no AWS tool, and that
a bad invocation is refused before any AWS call (``aws`` and ``curl`` are fakes that record
being called)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "infra" / "smoke.sh"


def test_bash_parses_it() -> None:
    done = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def called(tmp_path: Path) -> Path:
    """A PATH directory whose ``aws`` and ``curl`` only append their arguments to a log."""
    log = tmp_path / "called.log"
    for tool in ("aws", "curl"):
        fake = tmp_path / tool
        fake.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{log}"\n')
        fake.chmod(0o755)
    return log


def smoke(called: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    path = f"{called.parent}:/usr/bin:/bin"
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        env={"PATH": path, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_help_tells_every_option_and_the_steps_without_calling_aws(called: Path) -> None:
    done = smoke(called, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: infra/smoke.sh STACK --region REGION --bucket BUCKET")
    parsed = set(re.findall(r"^\s+(--[a-z-]+)(?: \| --[a-z-]+)?\)", SCRIPT.read_text(), re.M))
    assert parsed == {"--region", "--bucket", "--token", "--no-deploy", "--delete"}
    for option in parsed:
        assert f"  {option}" in done.stdout, option
    for step in ("aws cloudformation package", "aws cloudformation deploy", "GET /health"):
        assert step in done.stdout
    for variable in ("BSS_JWT_SECRET", "BSS_MAIL_FROM", "BSS_ALARM_EMAIL", "BSS_PUBLIC_URL"):
        assert variable in done.stdout
    assert not called.exists()


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ((), {"AWS_REGION": "eu-central-1"}, "no stack name"),
        (("bss-prod",), {}, "no region"),
        (("bss-prod", "--region", "eu-central-1"), {}, "no bucket"),
        (("bss-prod", "--bucket", "b", "--region", "eu-central-1"), {}, "BSS_JWT_SECRET"),
        (("bss-prod", "--force"), {}, "unknown option --force"),
    ],
)
def test_a_bad_invocation_is_refused_before_any_aws_call(
    called: Path, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    done = smoke(called, *args, **env)
    assert done.returncode == 2
    assert message in done.stderr
    assert not called.exists()

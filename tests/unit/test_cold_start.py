"""Cold start: importing the app loads neither PynamoDB/botocore nor PyJWT; the composition root
loads them on the first request (DEVELOPERS: no AWS clients or settings at import time)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_app_defers_aws_sdk_and_jwt() -> None:
    code = (
        "import sys, app\n"
        "heavy = [m for m in ('pynamodb', 'botocore', 'boto3', 'jwt', 'cryptography',"
        " 'aws_lambda_powertools') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    env = {"PATH": "/usr/bin:/bin"}  # no BSS_* settings: importing must not read them
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""

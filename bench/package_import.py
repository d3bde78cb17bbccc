"""Cold import from the deployment package (issue 16): each function's imports, from the unpacked
function zip and layer laid out as Lambda does (``/var/task``, the layer under ``/opt``, boto3
from the runtime), against ``import boto3`` from the same layout in the same run.

A function's cold import is ``import app`` (what Lambda does to find ``app.<name>``) and the
import of its handler module, which its first call does (``app.py``): the functions of one
handler module share it, so they are measured together. ``billing_render``'s first PDF also
imports fpdf2, shown as a line of its own. Each figure is the median over 7 fresh
``python -I -S`` interpreters (start-up excluded), alternating between the statements.

    python -m bench package_import [--package build/package]

Without ``--package`` it builds the package first (``python -m infra.package``, into a
temporary directory).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

RUNS = 7
TIMER = (
    "import sys, time; sys.path[:0] = sys.argv[1:]; t = time.perf_counter(); {statement}; "
    "print(time.perf_counter() - t)"
)
ENV = {
    "AWS_REGION": "us-east-1",
    "BSS_TABLE_PREFIX": "bench",
    "BSS_JWT_SECRET": "bench-secret-0123456789abcdef0123",
    "BSS_BILLING_STATE_MACHINE": "arn:aws:states:us-east-1:1:stateMachine:bench-billing-run",
    "BSS_DOCUMENTS_BUCKET": "bench-documents",
    "BSS_MAIL_FROM": "billing@example.com",
    "BSS_PUBLIC_URL": "https://api.example.com",
}


def handler_modules() -> dict[str, list[str]]:
    """Each handler module and the functions whose handler it holds."""
    from functions.entrypoints import FUNCTIONS

    modules: dict[str, list[str]] = {}
    for name, module in FUNCTIONS.items():
        modules.setdefault(module, []).append(name)
    return modules


def statements() -> dict[str, str]:
    """What to time: boto3 alone, then per handler module (the API: ``app`` alone)."""
    timed = {"import boto3": "import boto3", "APIHandler: import app": "import app"}
    for module in handler_modules():
        timed[f"import app + {module}"] = f"import app; import {module}"
    timed["+ billing_render's first PDF: import fpdf"] = "import fpdf"
    return timed


def _time(statement: str, paths: Sequence[Path]) -> float:
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", TIMER.format(statement=statement), *map(str, paths)],
        cwd=paths[0],
        env=ENV,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.split()[-1]) * 1000


def measure(paths: Sequence[Path], runs: int = RUNS) -> dict[str, float]:
    timed = statements()
    for statement in timed.values():
        _time(statement, paths)  # unmeasured: page cache
    samples: dict[str, list[float]] = {label: [] for label in timed}
    for _ in range(runs):
        for label, statement in timed.items():
            samples[label].append(_time(statement, paths))
    return {label: statistics.median(values) for label, values in samples.items()}


def main(argv: Sequence[str] | None = None) -> int:
    from infra import layer, package

    parser = argparse.ArgumentParser(prog="python -m bench.package_import", description=__doc__)
    parser.add_argument("--package", type=Path, help="a built package directory (make package)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bss-cold-") as tmp:
        built = args.package
        if built is None:
            built = Path(tmp) / "package"
            package.build(built)
        function_zip, layer_zip = built / "deployment.zip", built / "layer-deployment.zip"
        print(
            f"function zip {function_zip.stat().st_size / 1e6:.2f} MB, "
            f"layer {layer_zip.stat().st_size / 1e6:.1f} MB"
        )
        paths = layer.unpack(function_zip, layer_zip, Path(tmp) / "lambda")
        medians = measure(paths)
    boto3 = medians.pop("import boto3")
    print(f"{'import boto3':<48} {boto3:7.1f} ms   1.00")
    for label, ms in medians.items():
        print(f"{label:<48} {ms:7.1f} ms  {ms / boto3:5.2f}")
    print(f"(median of {RUNS} fresh interpreters each; ratio to import boto3 in the same run)")
    for module, names in handler_modules().items():
        print(f"  {module}: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

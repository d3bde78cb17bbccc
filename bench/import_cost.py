"""Import cost, the part of a Lambda cold start the code controls: ``import app`` against
``import boto3`` alone. Target: app ≤ 1.3 × boto3.

Each figure is the median, over 7 fresh interpreters run from the repo root, of the wall time of
the import statement itself (``perf_counter`` around it; interpreter start-up excluded), with
bytecode present (a first, unmeasured run writes any missing .pyc). Then one ``-X importtime`` run
of ``import app`` shows where the time goes: the heaviest packages and which module of the app
first imports each.

    python -m bench.import_cost
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 7
TARGET = 1.3
TIMER = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("PYTHONDONTWRITEBYTECODE", "PYTHONPROFILEIMPORTTIME", "PYTHONPATH"):
        env.pop(name, None)
    return env


def _time_import(module: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", TIMER.format(module=module)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.split()[-1]) * 1000


def measure(modules: tuple[str, ...], runs: int = RUNS) -> dict[str, list[float]]:
    """Milliseconds to import each module in ``runs`` fresh interpreters, after one unmeasured
    warm-up each (it writes any missing bytecode); runs alternate between the modules so that
    a change of machine load affects them alike."""
    for module in modules:
        _time_import(module)
    samples: dict[str, list[float]] = {module: [] for module in modules}
    for _ in range(runs):
        for module in modules:
            samples[module].append(_time_import(module))
    return samples


@dataclass(frozen=True)
class Imported:
    name: str
    depth: int
    self_ms: float
    cumulative_ms: float
    #: the chain of importers, nearest first (``-X importtime`` prints children before parents)
    importers: tuple[str, ...]


def import_tree(module: str) -> list[Imported]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    rows: list[tuple[str, int, float, float]] = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        self_us, cumulative_us, label = line.removeprefix("import time:").split("|", 2)
        if not self_us.strip().isdigit():
            continue  # the header line
        name = label.lstrip(" ")
        depth = (len(label) - len(name) - 1) // 2
        rows.append((name.strip(), depth, int(self_us) / 1000, int(cumulative_us) / 1000))
    tree = []
    for index, (name, depth, self_ms, cumulative_ms) in enumerate(rows):
        importers: list[str] = []
        wanted = depth - 1
        for later_name, later_depth, _, _ in rows[index + 1 :]:
            if wanted < 0:
                break
            if later_depth == wanted:
                importers.append(later_name)
                wanted -= 1
        tree.append(Imported(name, depth, self_ms, cumulative_ms, tuple(importers)))
    return tree


@dataclass(frozen=True)
class PackageCost:
    name: str
    #: the sum of the self times of the package's modules
    total_ms: float
    #: the package's module the rest of the code imported with the largest cumulative time
    entry: Imported


def package_costs(tree: list[Imported], limit: int = 8) -> list[PackageCost]:
    """Top-level packages (``botocore``, ``pydantic``, …) by the time spent in their modules
    (a package's ``__init__`` is often cheap while its submodules are imported from elsewhere)."""
    totals: dict[str, float] = {}
    entries: dict[str, Imported] = {}
    for imported in tree:
        package = imported.name.split(".")[0]
        if package in ("app", "functions"):
            continue
        totals[package] = totals.get(package, 0.0) + imported.self_ms
        importer = imported.importers[0] if imported.importers else ""
        outside = importer.split(".")[0] != package
        best = entries.get(package)
        if outside and (best is None or imported.cumulative_ms > best.cumulative_ms):
            entries[package] = imported
    costs = [PackageCost(name, ms, entries[name]) for name, ms in totals.items() if name in entries]
    return sorted(costs, key=lambda c: c.total_ms, reverse=True)[:limit]


def first_app_importer(imported: Imported) -> str:
    """The app's own chain that pulled a module in, e.g. ``functions.core.persistence ← …``."""
    own = [m for m in imported.importers if m == "app" or m.startswith("functions")]
    return " ← ".join(own) if own else "(not from the app's modules)"


def main() -> int:
    samples = measure(("boto3", "app"))
    boto3, app = samples["boto3"], samples["app"]
    boto3_ms, app_ms = statistics.median(boto3), statistics.median(app)
    ratio = app_ms / boto3_ms
    spread = "min {:.0f} / max {:.0f}"
    print(f"import boto3  {boto3_ms:7.1f} ms  (median of {RUNS}; {spread.format(*_ends(boto3))})")
    print(f"import app    {app_ms:7.1f} ms  (median of {RUNS}; {spread.format(*_ends(app))})")
    verdict = "met" if ratio <= TARGET else "NOT met"
    print(f"ratio app / boto3 = {ratio:.2f}  (target ≤ {TARGET}: {verdict})")

    tree = import_tree("app")
    print("\nheaviest packages under `import app` (one -X importtime run; ms in their modules):")
    for cost in package_costs(tree):
        entry = cost.entry
        print(
            f"  {cost.name:<16} {cost.total_ms:6.1f}  {entry.name} via {first_app_importer(entry)}"
        )
    own = sorted(
        (i for i in tree if i.name.startswith("functions")),
        key=lambda i: i.self_ms,
        reverse=True,
    )[:5]
    print(
        "app modules by own (self) time, ms: " + ", ".join(f"{i.name} {i.self_ms:.1f}" for i in own)
    )
    return 0


def _ends(samples: list[float]) -> tuple[float, float]:
    return min(samples), max(samples)


if __name__ == "__main__":
    sys.exit(main())

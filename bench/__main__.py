"""``python -m bench [name ...]``: run every benchmark (or the named ones), in order."""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Sequence

#: Every benchmark module: each has ``main() -> int`` that prints its figures.
BENCHMARKS: tuple[str, ...] = ("bench.import_cost",)


def main(argv: Sequence[str] | None = None) -> int:
    names = list(sys.argv[1:] if argv is None else argv)
    unknown = [n for n in names if f"bench.{n}" not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; known: {list(BENCHMARKS)}", file=sys.stderr)
        return 2
    selected = [m for m in BENCHMARKS if not names or m.removeprefix("bench.") in names]
    status = 0
    for name in selected:
        print(f"== {name}")
        started = time.perf_counter()
        status |= importlib.import_module(name).main()
        print(f"   ({time.perf_counter() - started:.1f} s)\n")
    return status


if __name__ == "__main__":
    sys.exit(main())

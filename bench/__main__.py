"""``python -m bench [name ...] [--option ...]``: run every benchmark (or the named ones), in
order; options after the names go to the benchmarks that take them (``main(argv)``), e.g.
``python -m bench backorder --changes 500``."""

from __future__ import annotations

import importlib
import inspect
import sys
import time
from collections.abc import Sequence

#: Every benchmark module: each has ``main() -> int`` (or ``main(argv) -> int`` if it takes
#: options) that prints its figures.
BENCHMARKS: tuple[str, ...] = (
    "bench.import_cost",
    "bench.package_import",
    "bench.backorder",
    "bench.propagation",
    "bench.billing",
    "bench.reconciliation",
    "bench.documents",
    "bench.cold_request",
    "bench.storefront",
)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    split = next((i for i, arg in enumerate(args) if arg.startswith("-")), len(args))
    names, options = args[:split], args[split:]
    unknown = [n for n in names if f"bench.{n}" not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; known: {list(BENCHMARKS)}", file=sys.stderr)
        return 2
    selected = [m for m in BENCHMARKS if not names or m.removeprefix("bench.") in names]
    modules = [importlib.import_module(name) for name in selected]
    takes_options = [bool(inspect.signature(m.main).parameters) for m in modules]
    if options and not any(takes_options):
        print(f"no selected benchmark takes options {options}", file=sys.stderr)
        return 2
    if options and sum(takes_options) > 1:  # each would get them all, and refuse the others'
        takers = [
            m.removeprefix("bench.") for m, t in zip(selected, takes_options, strict=True) if t
        ]
        print(
            f"options {options} go to every selected benchmark that takes options ({takers}):"
            " name the one they are for, e.g. `python -m bench backorder --changes 500`",
            file=sys.stderr,
        )
        return 2
    status = 0
    for name, module, takes in zip(selected, modules, takes_options, strict=True):
        print(f"== {name}")
        started = time.perf_counter()
        status |= module.main(options) if takes else module.main()
        print(f"   ({time.perf_counter() - started:.1f} s)\n")
    return status


if __name__ == "__main__":
    sys.exit(main())

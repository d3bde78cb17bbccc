"""The soak itself: a fresh platform, the clients, the billing run and the burst, the checks
once it has settled, the report, and the command line (``python -m local.soak``)."""

from __future__ import annotations

import argparse
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from local.soak.checks import (
    Check,
    _problems,
    billing_run,
    check_convergence,
    check_orders_readable,
    probe,
)
from local.soak.clients import BURST, Client, Shared, burst
from local.soak.http import Http, PlatformProcess, SoakError, Stats
from local.soak.lag import LagSampler, OrdersTable, moto_endpoint
from local.soak.world import discover

DEFAULT_CLIENTS = 20
DEFAULT_SECONDS = 120
#: how long the platform may take, once the clients stop, to deliver everything
SETTLE_TIMEOUT_S = 120.0


@dataclass
class Result:
    clients: int
    seconds: float
    load: Stats  # the clients' requests (the billing run's start and the burst included)
    sampling: Stats  # the lag sampler's polls
    checking: Stats  # set-up, probe and checks
    lags: list[float]
    lag_unfinished: int  # sampled changes not in Cloud's BSS yet when sampling stopped
    lag_where: str  # where the sampler looked
    lag_polls: int
    #: the writes answered 200/201 by kind (new, change_quantity, addon, cancel, usage)
    writes: Counter[str]
    checks: list[Check]
    burst: Counter[int]
    log_notes: dict[str, int]
    startup_s: float

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[max(0, min(98, int(q) - 1))]


def run_soak(
    clients: int,
    seconds: float,
    *,
    seed: int | None = None,
    settle_s: float = SETTLE_TIMEOUT_S,
    keep: bool = False,
    out: Callable[[str], None] = print,
) -> Result:
    seed = random.randrange(1_000_000) if seed is None else seed
    directory = Path(tempfile.mkdtemp(prefix="bss-soak-"))
    secret = secrets.token_urlsafe(36)
    platform = PlatformProcess(directory, secret)
    out(f"soak: {clients} clients × {seconds:.0f} s, seed {seed}; starting a fresh platform …")
    ok = False
    try:
        startup = platform.start()
        out(f"soak: platform ready at {platform.url} in {startup:.1f} s (log {platform.log_path})")
        result = _soak(platform, secret, clients, seconds, seed, settle_s, startup, out)
        ok = result.passed
        return result
    finally:
        code = platform.stop()
        if code not in (0, None):
            out(f"soak: the platform exited with {code} on Ctrl-C")
        if ok and not keep:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            out(f"soak: kept {directory} (platform.log)")


def _soak(
    platform: PlatformProcess,
    secret: str,
    clients: int,
    seconds: float,
    seed: int,
    settle_s: float,
    startup: float,
    out: Callable[[str], None],
) -> Result:
    load, sampling, checking = Stats(), Stats(), Stats()
    http = Http(platform.url, checking)
    world = discover(http, platform.url, secret, buyers=max(4, clients // 2))
    shared = Shared()
    rng = random.Random(seed)

    endpoint = moto_endpoint(platform.log())
    store = OrdersTable(endpoint, world.cloud_id) if endpoint else None
    sampler = LagSampler(world, shared, sampling, store)
    sampler.start()
    started = time.monotonic()
    deadline = started + seconds
    workers = [Client(n, world, shared, load, deadline, seed) for n in range(clients)]
    for worker in workers:
        worker.start()

    time.sleep(max(0.0, started + seconds / 3 - time.monotonic()))
    admin = Http(platform.url, load)
    answer = admin.call("POST", "/billing-runs", world.tokens["resell_admin"], {})
    admin.close()
    run_id = answer.body["id"] if answer.status == 202 else None
    out(f"soak: billing run started ({answer.status}) at {time.monotonic() - started:.0f} s")
    time.sleep(max(0.0, started + seconds / 2 - time.monotonic()))
    burst_statuses = burst(world, shared, load, rng)
    out(f"soak: burst of {BURST} parallel quantity changes: {dict(sorted(burst_statuses.items()))}")
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    out(f"soak: load done after {elapsed:.0f} s ({load.requests} requests); settling …")

    crashed = [f"{w.name}: {w.error!r}" for w in workers if w.error is not None]
    probe_check, _ = probe(http, world, shared, settle_s)
    settle_until = time.monotonic() + settle_s
    while True:
        try:
            convergence = check_convergence(http, world, shared)
        except SoakError as error:  # a list the checks read did not answer 200
            convergence = [Check("the checks read both BSSs", False, str(error)[:300])]
        if all(c.passed for c in convergence) or time.monotonic() > settle_until:
            break
        time.sleep(1.0)
    sampler.stop()
    checks = [
        check_orders_readable(http, world, shared),
        *convergence,
        probe_check,
        billing_run(http, world, run_id, settle_s),
        Check("every client ran to the end", not crashed, "", _problems(crashed)),
    ]
    everything = (load, sampling, checking)
    server_errors = sum(n for st in everything for code, n in st.statuses.items() if code >= 500)
    unanswered = sum(st.statuses.get(0, 0) for st in everything)
    shown = [line for st in everything for line in st.server_errors + st.no_answer]
    checks.insert(
        0,
        Check(
            "no 5xx and every request answered",
            server_errors == 0 and unanswered == 0,
            f"{server_errors} 5xx, {unanswered} not answered, of "
            f"{sum(st.requests for st in everything)} requests",
            _problems(shown),
        ),
    )
    log = platform.log()
    notes = {
        "tracebacks": log.count("Traceback (most recent call last)"),
        "STUCK": log.count("STUCK"),
        "set aside": log.count("set aside"),
    }
    http.close()
    return Result(
        clients=clients,
        seconds=elapsed,
        load=load,
        sampling=sampling,
        checking=checking,
        lags=sampler.lags,
        lag_unfinished=sampler.unfinished,
        lag_where=f"Cloud's orders table on {endpoint}" if endpoint else "Cloud's API",
        lag_polls=sampler.polls,
        writes=Counter(a.what for a in shared.applied) + Counter(usage=shared.usage_recorded),
        checks=checks,
        burst=burst_statuses,
        log_notes=notes,
        startup_s=startup,
    )


def _statuses(statuses: Counter[int]) -> str:
    return ", ".join(f"{'no answer' if s == 0 else s}: {n}" for s, n in sorted(statuses.items()))


def report(result: Result) -> str:
    load = result.load
    lines = [
        "",
        f"soak: {result.clients} clients for {result.seconds:.0f} s "
        f"(platform started in {result.startup_s:.1f} s)",
        f"  requests        {load.requests} by the clients "
        f"({load.requests / max(result.seconds, 1):.1f}/s); besides, "
        f"{result.lag_polls} lag polls and {result.checking.requests} API requests for set-up "
        "and checks",
        f"  by status       {_statuses(load.statuses)}",
        f"  answered in     p50 {percentile(load.latencies, 50):.3f} s, "
        f"p99 {percentile(load.latencies, 99):.3f} s, max {max(load.latencies, default=0):.3f} s",
        "  applied         " + ", ".join(f"{what}: {n}" for what, n in result.writes.most_common()),
    ]
    if load.codes:
        lines.append(
            "  4xx by code     " + ", ".join(f"{c}: {n}" for c, n in load.codes.most_common())
        )
    lines.append(f"  set-up, checks  {_statuses(result.checking.statuses)}")
    if result.sampling.requests:
        lines.append(f"  lag polls (API) {_statuses(result.sampling.statuses)}")
    if result.lags:
        lines.append(
            f"  replication lag p50 {percentile(result.lags, 50):.3f} s, "
            f"p99 {percentile(result.lags, 99):.3f} s, max {max(result.lags):.3f} s "
            f"({len(result.lags)} sampled changes: the child's 200 → Cloud's order of it in "
            f"{result.lag_where}; polled every 10 ms, then 5 % of the wait; "
            f"{result.lag_unfinished} unfinished)"
        )
    else:
        lines.append("  replication lag: no sample")
    lines.append(
        f"  burst           {BURST} parallel quantity changes on one subscription: "
        + ", ".join(f"{s}: {n}" for s, n in sorted(result.burst.items()))
    )
    lines.append(
        "  platform log    " + ", ".join(f"{n} {what}" for what, n in result.log_notes.items())
    )
    lines.append("  checks")
    for check in result.checks:
        detail = f" ({check.detail})" if check.detail else ""
        lines.append(f"    {'PASS' if check.passed else 'FAIL'}  {check.name}{detail}")
        lines += [f"            {problem}" for problem in check.problems]
    lines.append("PASS" if result.passed else "FAIL")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.soak",
        description="N concurrent storefront clients for T seconds against a fresh local "
        "platform, then the back-ordering invariants checked over HTTP (issue 11).",
    )
    parser.add_argument("--clients", type=int, default=DEFAULT_CLIENTS, help="default 20")
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="default 120")
    parser.add_argument("--seed", type=int, default=None, help="the clients' random choices")
    parser.add_argument(
        "--settle",
        type=float,
        default=SETTLE_TIMEOUT_S,
        help="seconds the platform may take to deliver everything after the load (default 120)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the platform's log and state")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0:
        parser.error("--clients and --seconds must be positive")
    try:
        result = run_soak(
            args.clients, args.seconds, seed=args.seed, settle_s=args.settle, keep=args.keep
        )
    except SoakError as error:
        print(f"soak: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("soak: interrupted", file=sys.stderr)
        return 130
    print(report(result), flush=True)
    return 0 if result.passed else 1

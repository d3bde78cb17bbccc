"""A cold container's first request: what a Lambda pays after ``import app`` on its first call,
the composition root (settings, PynamoDB models bound) and the botocore session and client(s)
it makes, plus the request's own DynamoDB calls. Issue 12: one botocore client shared by every
model instead of one per table (each ~0.15–0.7 s to make).

How: a moto server (in this process) holds a tenant with a list, a priced product and a customer,
seeded through the API. Then, RUNS times, a fresh interpreter (cwd: ``--root``, default this
repository) imports ``app`` and serves ``POST /subscriptions`` through the Lambda entry point
twice, with a tenant admin's token: the first call is the cold one (it touches the tenants,
accounts, products, price lists, prices, subscriptions and orders tables and writes a
transaction), the second the warm one. Printed: the median of each and their ratio.

    python -m bench cold_request [--root <another checkout, e.g. a worktree of an older commit>]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.meter import ENV, SECRET, environment

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5

CHILD = r"""
import json, os, sys, time
sys.path.insert(0, os.getcwd())
started = time.perf_counter()
import app
imported = time.perf_counter()

def call(body):
    event = {
        "resource": "/subscriptions", "path": "/subscriptions", "httpMethod": "POST",
        "headers": {"accept": "application/json", "content-type": "application/json",
                    "authorization": "Bearer " + os.environ["BENCH_TOKEN"]},
        "multiValueHeaders": {}, "queryStringParameters": None,
        "multiValueQueryStringParameters": None, "pathParameters": None,
        "stageVariables": None, "body": json.dumps(body), "isBase64Encoded": False,
        "requestContext": {"resourcePath": "/subscriptions", "httpMethod": "POST",
                           "path": "/api/subscriptions", "stage": "api", "requestId": "r-1",
                           "identity": {"sourceIp": "127.0.0.1"}},
    }
    t = time.perf_counter()
    status = app.app(event, None)["statusCode"]
    return status, time.perf_counter() - t

body = json.loads(os.environ["BENCH_BODY"])
cold = call(body)
warm = call(body)
print(json.dumps({"import": imported - started, "cold": cold, "warm": warm}))
"""


def _seed(api: Any) -> tuple[str, dict[str, Any]]:
    """A tenant, a list with a price, a product, a customer: the admin's token and the body."""
    from functions.core.auth import issue_token

    def ok(method: str, path: str, token: str, body: Any) -> Any:
        response = api.http.request(
            method,
            path,
            headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
            body=json.dumps(body).encode(),
        )
        assert response.status_code in (200, 201), (path, response.body)
        return json.loads(response.body)

    platform = issue_token(SECRET, sub="bench", role="platform_admin")
    tenant = ok(
        "POST",
        "/tenants",
        platform,
        {"name": "Cold", "country": "DE", "time_zone": "Europe/Berlin", "currency": "EUR"},
    )
    admin = issue_token(SECRET, sub="bench", role="tenant_admin", tenant_id=tenant["id"])
    retail = ok("POST", "/pricelists", admin, {"name": "Retail", "currency": "EUR"})
    product = ok(
        "POST",
        "/products",
        admin,
        {
            "sku": "COLD-1",
            "name": "Cold product",
            "type": "license",
            "billing_cycles": ["monthly"],
            "unit": "license",
            "costs": {"monthly": "10.00"},
        },
    )
    ok(
        "POST",
        f"/pricelists/{retail['id']}/prices",
        admin,
        {"product_id": product["id"], "billing_cycle": "monthly", "price": "12.00"},
    )
    account = ok("POST", "/accounts", admin, {"name": "Customer", "price_list_id": retail["id"]})
    body = {
        "account_id": account["id"],
        "product_id": product["id"],
        "billing_cycle": "monthly",
        "quantity": 1,
    }
    return admin, body


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench cold_request")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to run app from")
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args(argv)
    import logging

    from chalice.test import Client
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # it logs every request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    values = {**ENV, "BSS_AWS_ENDPOINT": endpoint, "BSS_TABLE_PREFIX": "cold"}
    try:
        with environment(values):
            from app import app
            from functions import composition
            from functions.core.persistence import create_tables

            composition.reset()
            composition.container()  # binds the models to the server
            create_tables(composition.models())
            with Client(app) as client:
                token, body = _seed(client)
            samples: list[dict[str, Any]] = []
            for _ in range(args.runs):
                env = {**os.environ, "BENCH_TOKEN": token, "BENCH_BODY": json.dumps(body)}
                env.pop("PYTHONPATH", None)
                done = subprocess.run(
                    [sys.executable, "-c", CHILD],
                    cwd=args.root,
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                samples.append(json.loads(done.stdout.strip().splitlines()[-1]))
    finally:
        server.stop()
    statuses = {(s["cold"][0], s["warm"][0]) for s in samples}
    cold = statistics.median(s["cold"][1] for s in samples) * 1000
    warm = statistics.median(s["warm"][1] for s in samples) * 1000
    imported = statistics.median(s["import"] for s in samples) * 1000
    print(f"checkout: {args.root}   runs: {args.runs}   statuses (cold, warm): {sorted(statuses)}")
    print(f"import app        {imported:8.0f} ms")
    print(f"first request     {cold:8.0f} ms   (POST /subscriptions, cold container)")
    print(f"second request    {warm:8.0f} ms   (warm)")
    print(f"first / second    {cold / warm:8.1f} ×")
    return 0 if statuses == {(201, 201)} else 1

"""The replication lag: from a child's 200 to the provider order of that change in Cloud's
BSS, sampled while the clients run."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

from local.soak.clients import Applied, Shared
from local.soak.http import REQUEST_TIMEOUT_S, Http, Stats
from local.soak.world import World, provider_order_id

#: how often the lag sampler polls the provider at first (then every 5 % of the time waited)
LAG_POLL_S = 0.01


@dataclass
class _Sample:
    change: Applied
    order_id: str  # the provider's order it becomes
    due: float = 0.0  # when to poll next


class OrdersTable:
    """Cloud's orders as its table on the platform's moto server holds them: where the lag
    sampler looks, so its polls do not wait in the API's queue behind the clients' requests
    (``local.server.API_CONCURRENCY``) and the lag is the replication's alone."""

    def __init__(self, endpoint: str, cloud_id: str) -> None:
        import boto3

        from functions.orders.adapters import OrderModel
        from local.platform import TABLE_PREFIX, _region

        self.endpoint = endpoint
        self.table = f"{TABLE_PREFIX}-{OrderModel.base_name}"
        self.cloud_id = cloud_id
        self.dynamodb = boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name=_region()
        ).client("dynamodb", endpoint_url=endpoint)

    def has(self, order_id: str) -> bool:
        key = {"tenant_id": {"S": self.cloud_id}, "id": {"S": order_id}}
        return "Item" in self.dynamodb.get_item(TableName=self.table, Key=key)


def moto_endpoint(log: str) -> str | None:
    """The moto server's address, from the platform's banner (``AWS  http://…``)."""
    found = re.search(r"^\s*AWS\s+(http://\S+)", log, re.MULTILINE)
    return found.group(1) if found else None


class LagSampler(threading.Thread):
    """Samples the replication lag: takes the latest applied change of a mirrored subscription
    (up to ``pending`` at a time) and polls for the provider order of the version the child's
    answer showed until it is there: every ``LAG_POLL_S`` at first, then every 5 % of the time
    waited so far (a precision of 5 %, and few polls when the lag is long). It looks in Cloud's
    orders table (``store``) when the platform's banner names its moto server, else asks
    Cloud's API (``GET /orders/{id}``), whose answer also waits in the API's queue."""

    def __init__(
        self,
        world: World,
        shared: Shared,
        stats: Stats,
        store: OrdersTable | None = None,
        pending: int = 4,
    ) -> None:
        super().__init__(name="soak-lag", daemon=True)
        self.world = world
        self.shared = shared
        self.http = Http(world.url, stats)
        self.store = store
        self.pending = pending
        self.polls = 0
        self.lags: list[float] = []
        #: samples whose order had not appeared when the sampler was stopped
        self.unfinished = 0
        self.stopping = threading.Event()
        self._seen = 0

    def stop(self) -> None:
        self.stopping.set()
        with self.shared.changed:
            self.shared.changed.notify_all()
        self.join(timeout=REQUEST_TIMEOUT_S)

    def run(self) -> None:
        token = self.world.tokens["cloud_admin"]
        waiting: list[_Sample] = []
        while not self.stopping.is_set():
            if len(waiting) < self.pending:
                change = self._latest()
                if change is not None:
                    order_id = provider_order_id(self.world, change.subscription_id, change.version)
                    waiting.append(_Sample(change, order_id))
            for sample in [s for s in waiting if s.due <= time.monotonic()]:
                self.polls += 1
                if self.store is not None:
                    try:
                        found = self.store.has(sample.order_id)
                    except Exception:  # moto busy or gone: the next poll tells
                        found = False
                    at = time.monotonic()
                else:
                    answer = self.http.call("GET", f"/orders/{sample.order_id}", token)
                    found, at = answer.status == 200, answer.at
                if found:
                    self.lags.append(at - sample.change.at)
                    waiting.remove(sample)
                else:
                    waited = time.monotonic() - sample.change.at
                    sample.due = time.monotonic() + max(LAG_POLL_S, waited / 20)
            now = time.monotonic()
            pause = min((s.due for s in waiting), default=now + 0.5) - now
            with self.shared.changed:
                if len(waiting) >= self.pending or len(self.shared.applied) == self._seen:
                    self.shared.changed.wait(max(0.0, min(pause, 0.5)))
        self.unfinished = len(waiting)
        self.http.close()

    def _latest(self) -> Applied | None:
        """The latest change not seen yet of a mirrored subscription (the others are skipped)."""
        with self.shared.lock:
            fresh = self.shared.applied[self._seen :]
            self._seen = len(self.shared.applied)
        return next((change for change in reversed(fresh) if change.mirrored), None)

"""SQS at the edge: send a job message to one of the BSS's queues (named like the tables,
``<prefix>-<base name>``; ``infra/events.py`` declares them). The client is made on first use
and the queue's URL looked up once per container."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

from functions.core import observability
from functions.core.settings import Settings


class Queue:
    def __init__(self, settings: Settings, base_name: str) -> None:
        self.settings = settings
        self.name = settings.queue_name(base_name)
        self._client: Any = None
        self._url: str | None = None
        self._lock = threading.Lock()

    def send(self, body: Mapping[str, Any]) -> None:
        """One message; the correlation id of what sends it rides along as the
        ``correlation_id`` attribute (``functions.core.handlers`` binds it again)."""
        client, url = self._connect()
        correlation = observability.current()
        attributes = (
            {"correlation_id": {"DataType": "String", "StringValue": correlation}}
            if correlation
            else {}
        )
        client.send_message(
            QueueUrl=url,
            MessageBody=json.dumps(body, sort_keys=True),
            **({"MessageAttributes": attributes} if attributes else {}),
        )

    def _connect(self) -> tuple[Any, str]:
        with self._lock:
            if self._client is None:
                import botocore.session

                self._client = botocore.session.get_session().create_client(
                    "sqs", region_name=self.settings.region, endpoint_url=self.settings.aws_endpoint
                )
            if self._url is None:
                self._url = str(self._client.get_queue_url(QueueName=self.name)["QueueUrl"])
            return self._client, self._url

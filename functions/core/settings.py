"""Settings: one typed place, read once when the composition root is first used, never at import.

Required variables have no default: a missing one is an error naming it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


class SettingsError(RuntimeError):
    pass


@dataclass(frozen=True)
class Settings:
    #: prefix of every DynamoDB table and SQS queue name, e.g. ``bss-dev`` → ``bss-dev-accounts``
    #: (in AWS: the stack name)
    table_prefix: str
    #: AWS region of the tables
    region: str
    #: HS256 secret the app checks bearer tokens with (SPEC §9)
    jwt_secret: str
    #: endpoint of every AWS service (DynamoDB, SQS); empty means the region's AWS endpoints
    #: (set to the moto server locally)
    aws_endpoint: str | None
    #: the billing run's state machine (R24), which ``POST /billing-runs`` and the schedule start
    billing_state_machine: str
    #: the S3 bucket of invoice documents (R26)
    documents_bucket: str
    #: the sender of billing email (an SES-verified identity)
    mail_from: str
    #: the API's public base URL, for links in email (``https://api.example.com``)
    public_url: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise SettingsError(f"environment variable {name} must be set")
            return value

        secret = required("BSS_JWT_SECRET")
        if len(secret) < 32:  # RFC 7518 §3.2: an HS256 key is at least 256 bits
            raise SettingsError("BSS_JWT_SECRET must be at least 32 characters")
        return cls(
            table_prefix=required("BSS_TABLE_PREFIX"),
            region=env.get("AWS_REGION", "").strip() or required("AWS_DEFAULT_REGION"),
            jwt_secret=secret,
            # Optional by design: unset in AWS, where the SDK finds the regional endpoint.
            aws_endpoint=env.get("BSS_AWS_ENDPOINT", "").strip() or None,
            billing_state_machine=required("BSS_BILLING_STATE_MACHINE"),
            documents_bucket=required("BSS_DOCUMENTS_BUCKET"),
            mail_from=required("BSS_MAIL_FROM"),
            public_url=required("BSS_PUBLIC_URL").rstrip("/"),
        )

    def queue_name(self, base_name: str) -> str:
        """``backfill`` → ``bss-dev-backfill``: queues are named like tables."""
        return f"{self.table_prefix}-{base_name}"

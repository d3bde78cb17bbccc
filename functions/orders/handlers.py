"""Lambda functions of the orders context's asynchronous paths; ``app.py`` wires them and
``infra/events.py`` declares their schedule."""

from __future__ import annotations

import logging
from typing import Any

from functions.composition import container
from functions.core.clock import now_utc
from functions.core.observability import invocation

logger = logging.getLogger("bss.orders")


@invocation
def renewal_schedule(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """EventBridge's daily event: every due scheduled downgrade applied by its automatic
    renewal (R31), before the billing schedule runs."""
    done = container().orders.renew_due(now_utc())
    logger.info("scheduled renewals written: %s", done)
    return done

"""Every Lambda function of the BSS besides the API, declared once: its name and the handler
module that holds a function of that name.

``app.py`` generates one ``app.lambda_function`` per entry from this list (each imports its
handler module on its first call, so the API's cold start does not pay for Powertools);
``infra/events.py`` (which stream or queue feeds which function) and ``infra/billing.py`` (which
function each Task state of the billing run invokes, and the schedule's) name these functions and
refuse a name that is not here. Pure data: no import beyond the standard library.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

_BACKORDER = "functions.backorder.handlers"
_PRICELIST = "functions.pricelist.handlers"
_INVOICES = "functions.invoices.handlers"
_STOREFRONT = "functions.storefront.handlers"
_ORDERS = "functions.orders.handlers"

#: function name → the module holding the handler of the same name
FUNCTIONS: Mapping[str, str] = MappingProxyType(
    {
        # back ordering (R11–R18, R25): streams of a reseller tenant's records, the backfill queue
        "subscriptions_stream": _BACKORDER,
        "accounts_stream": _BACKORDER,
        "usage_stream": _BACKORDER,
        "backfill_jobs": _BACKORDER,
        # reconciliation between tiers (R33): the run's pages, and its daily schedule
        "reconciliation_jobs": _BACKORDER,
        "reconciliation_schedule": _BACKORDER,
        # price-list propagation (R5, R6): the streams of prices and products, the fan-out queue
        "prices_stream": _PRICELIST,
        "products_stream": _PRICELIST,
        "price_changes": _PRICELIST,
        # the billing run (R24): the Task states of the state machine, and its daily schedule
        "billing_open": _INVOICES,
        "billing_list": _INVOICES,
        "billing_rate": _INVOICES,
        "billing_finalize": _INVOICES,
        "billing_render": _INVOICES,
        "billing_close": _INVOICES,
        "billing_schedule": _INVOICES,
        # commitment terms (R31): the daily automatic renewal of due downgrades
        "renewal_schedule": _ORDERS,
        # reseller plans (R27): a plan subscription's change → the reseller's storefront
        "plans_stream": _STOREFRONT,
    }
)


def declared(name: str) -> str:
    """``name`` if it is a function of this list, else a ``ValueError`` naming the list."""
    if name not in FUNCTIONS:
        raise ValueError(
            f"{name!r} is not a Lambda function of functions/entrypoints.py: {sorted(FUNCTIONS)}"
        )
    return name

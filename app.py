"""The Chalice app: wiring only. Each context's routes live on its blueprint; services are built
by ``functions.composition`` on the first request.

The asynchronous paths are plain Lambda functions (``app.lambda_function``) so they can report
partial batch failures; ``infra/events.py`` declares which stream or queue feeds each of them, for
the merge template and for the local runner alike. Each imports its handler on first call, so the
API's cold start does not pay for Powertools.
"""

from typing import Any

from chalice import Chalice

from functions.backorder.routes import api as backorder
from functions.core.api import error_object
from functions.core.routes import api as tenancy
from functions.invoices.routes import api as billing
from functions.orders.routes import api as storefront
from functions.pricelist.routes import api as catalogue

app = Chalice(app_name="bss")
app.experimental_feature_flags.update({"BLUEPRINTS"})
app.api.binary_types.append("application/pdf")  # invoice documents (R26)
for context in (tenancy, catalogue, storefront, backorder, billing):
    app.register_blueprint(context.blueprint)
app.register_middleware(error_object, "http")  # Chalice's own 405/415 … as SPEC §9 errors


@app.lambda_function(name="subscriptions_stream")
def subscriptions_stream(event: dict[str, Any], context: Any) -> Any:
    from functions.backorder import handlers

    return handlers.subscriptions_stream(event, context)


@app.lambda_function(name="accounts_stream")
def accounts_stream(event: dict[str, Any], context: Any) -> Any:
    from functions.backorder import handlers

    return handlers.accounts_stream(event, context)


@app.lambda_function(name="usage_stream")
def usage_stream(event: dict[str, Any], context: Any) -> Any:
    from functions.backorder import handlers

    return handlers.usage_stream(event, context)


@app.lambda_function(name="backfill_jobs")
def backfill_jobs(event: dict[str, Any], context: Any) -> Any:
    from functions.backorder import handlers

    return handlers.backfill_jobs(event, context)


@app.lambda_function(name="prices_stream")
def prices_stream(event: dict[str, Any], context: Any) -> Any:
    from functions.pricelist import handlers

    return handlers.prices_stream(event, context)


@app.lambda_function(name="products_stream")
def products_stream(event: dict[str, Any], context: Any) -> Any:
    from functions.pricelist import handlers

    return handlers.products_stream(event, context)


@app.lambda_function(name="price_changes")
def price_changes(event: dict[str, Any], context: Any) -> Any:
    from functions.pricelist import handlers

    return handlers.price_changes(event, context)


# --- the billing run (R24): the Task states of infra/billing_run.asl.json, and its schedule ---


@app.lambda_function(name="billing_open")
def billing_open(event: dict[str, Any], context: Any) -> Any:
    from functions.invoices import handlers

    return handlers.billing_open(event, context)


@app.lambda_function(name="billing_list")
def billing_list(event: dict[str, Any], context: Any) -> Any:
    from functions.invoices import handlers

    return handlers.billing_list(event, context)


@app.lambda_function(name="billing_rate")
def billing_rate(event: dict[str, Any], context: Any) -> Any:
    from functions.invoices import handlers

    return handlers.billing_rate(event, context)


@app.lambda_function(name="billing_finalize")
def billing_finalize(event: dict[str, Any], context: Any) -> Any:
    from functions.invoices import handlers

    return handlers.billing_finalize(event, context)


@app.lambda_function(name="billing_render")
def billing_render(event: dict[str, Any], context: Any) -> Any:
    from functions.invoices import handlers

    return handlers.billing_render(event, context)


@app.lambda_function(name="billing_close")
def billing_close(event: dict[str, Any], context: Any) -> Any:
    from functions.invoices import handlers

    return handlers.billing_close(event, context)


@app.lambda_function(name="billing_schedule")
def billing_schedule(event: dict[str, Any], context: Any) -> Any:
    from functions.invoices import handlers

    return handlers.billing_schedule(event, context)

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
from functions.core.routes import api as tenancy
from functions.invoices.routes import api as billing
from functions.orders.routes import api as storefront
from functions.pricelist.routes import api as catalogue

app = Chalice(app_name="bss")
app.experimental_feature_flags.update({"BLUEPRINTS"})
for context in (tenancy, catalogue, storefront, backorder, billing):
    app.register_blueprint(context.blueprint)


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

"""The Chalice app: wiring only. Each context's routes live on its blueprint; services are built
by ``functions.composition`` on the first request.

The asynchronous paths are plain Lambda functions (``app.lambda_function``) so they can report
partial batch failures, generated from the one list of ``functions/entrypoints.py``;
``infra/events.py`` declares which stream or queue feeds each of them, for the merge template and
for the local runner alike. Each imports its handler module on its first call, so the API's cold
start does not pay for Powertools.
"""

import importlib
from collections.abc import Callable
from typing import Any

from chalice import Chalice

from functions.backorder.routes import api as backorder
from functions.core.api import error_object, observed
from functions.core.routes import api as tenancy
from functions.entrypoints import FUNCTIONS
from functions.invoices.routes import api as billing
from functions.orders.routes import api as storefront
from functions.pricelist.routes import api as catalogue
from functions.storefront.routes import api as plans
from functions.storefront.routes import domains, pages
from functions.storefront.web import page_errors

app = Chalice(app_name="bss")
app.experimental_feature_flags.update({"BLUEPRINTS"})
app.api.binary_types.extend(
    [
        "application/pdf",  # invoice documents (R26)
        "image/png",  # storefront logos (R30)
        "image/jpeg",
        "multipart/form-data",  # a logo's upload
    ]
)
for context in (tenancy, catalogue, storefront, backorder, billing, plans):
    app.register_blueprint(context.blueprint)
app.register_middleware(observed, "http")  # outermost: correlation id, log line, metrics
app.register_blueprint(pages.blueprint)  # the storefront pages, /store/{alias}/… (R30)
app.register_blueprint(domains)  # a Standard storefront's custom domain root
app.register_middleware(page_errors, "http")  # … and under /store/ as pages (R30)
app.register_middleware(error_object, "http")  # Chalice's own 405/415 … as SPEC §9 errors


def _entrypoint(name: str, module: str) -> Callable[[dict[str, Any], Any], Any]:
    """``app.<name>``: calls ``<module>.<name>``, importing the module on the first call."""

    def handler(event: dict[str, Any], context: Any) -> Any:
        return getattr(importlib.import_module(module), name)(event, context)

    handler.__name__ = handler.__qualname__ = name  # Chalice's handler string: ``app.<name>``
    return handler


for _name, _module in FUNCTIONS.items():
    globals()[_name] = app.lambda_function(name=_name)(_entrypoint(_name, _module))

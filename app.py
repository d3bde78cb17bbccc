"""The Chalice app: wiring only. Each context's routes live on its blueprint; services are built
by ``functions.composition`` on the first request."""

from chalice import Chalice

from functions.backorder.routes import api as backorder
from functions.core.routes import api as tenancy
from functions.orders.routes import api as storefront
from functions.pricelist.routes import api as catalogue

app = Chalice(app_name="bss")
app.experimental_feature_flags.update({"BLUEPRINTS"})
for context in (tenancy, catalogue, storefront, backorder):
    app.register_blueprint(context.blueprint)

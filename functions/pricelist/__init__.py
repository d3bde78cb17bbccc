"""The catalogue (SPEC §2, R1–R7): products with their SKUs, price lists and their prices
(fixed, or a markup % over cost), the catalogue copied to a new tenant reseller (R3), the rules on
copied products (R4), and price-list propagation (R5, R6): the ``prices_stream`` and
``products_stream`` functions fan a list's change out to its assignees, a page of tenants per
``price-changes`` message (``price_changes``), and on down every tier. Routes: ``/products``,
``/pricelists``, ``/pricelists/{id}/prices``.
"""

"""The storefront (SPEC §3, R8–R10): subscriptions with their statuses, terms and dates (R8),
add-ons, the actions on them, and the order every commercial action writes in the same
transaction (R9). Routes: ``/subscriptions``, ``/subscriptions/{id}/actions``,
``/subscriptions/{id}/addons``, ``/orders``.
"""

"""Billing (SPEC §6, R20–R26): rating, proration, usage and the invoice run. Not built yet: it
is issue 5. Subscriptions already keep what rating needs (cycle, term, dates, quantity, the
buyer's price list and the bill-to account through their account)."""

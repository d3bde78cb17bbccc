"""Storefronts and reseller plans (R27, R30): the white-label shop pages and their rules."""

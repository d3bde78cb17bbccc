"""The local platform behind ``make run``: moto server, tables, the API, demo data."""

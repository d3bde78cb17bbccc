"""The BSS's bounded contexts.

Every context has the same inner files, so a newcomer knows where to look:

- ``domain.py``   pure rules (stdlib only: no boto3, pynamodb, chalice, powertools);
- ``schemas.py``  pydantic request/response models (they also generate ``/openapi.json``);
- ``services.py`` use cases: load through a repository, call the domain, commit;
- ``adapters.py`` PynamoDB models and repositories (the only place that talks to DynamoDB);
- ``routes.py``   thin HTTP handlers registered on a Chalice blueprint;
- ``handlers.py`` thin stream / job handlers (contexts that have them).

``core`` is the shared kernel (errors, money, ids, auth, the HTTP toolkit, idempotency, settings)
plus the parties every context needs: tenants and accounts. ``composition.py`` is the one
composition root: it reads settings and builds services, lazily, on first use.
"""

"""``GET /openapi.json``: an OpenAPI 3.1 document built from the route declarations and the same
pydantic models that validate the requests, so it matches the routes exactly (SPEC §9)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from functions.core.api import ID_PATTERN, IDEMPOTENCY_HEADER, Route

_REF = "#/components/schemas/{model}"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}

_DESCRIPTIONS = {
    400: "invalid input; `error.details.field` names the field (R29)",
    401: "missing, forged, expired or unsigned token",
    403: "the caller's role may not use this operation",
    404: "absent, or another tenant's or account's (R28)",
    406: "the Accept header names none of the route's media types",
    409: "the resource's state refuses the request",
    413: "the body is larger than the API reads (`error.details.limit` bytes)",
    415: "the body's Content-Type is not application/json",
}


def build_openapi(routes: list[Route], *, title: str, version: str) -> dict[str, Any]:
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}

    def ref(model: type[BaseModel], mode: str) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template=_REF, mode=mode)  # type: ignore[arg-type]
        schemas.update(schema.pop("$defs", {}))
        if set(schema) != {"$ref"}:  # a recursive model's definition arrives in its $defs
            schemas[model.__name__] = schema
        return {"$ref": _REF.format(model=model.__name__)}

    for route in routes:
        operation: dict[str, Any] = {
            "operationId": route.operation_id,
            "summary": route.summary,
            "tags": [route.tag],
            "parameters": [],
        }
        for name in re.findall(r"{(\w+)}", route.path):
            operation["parameters"].append(
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": ID_PATTERN},
                }
            )
        if route.query is not None:
            query_schema = route.query.model_json_schema(mode="validation")
            required = set(query_schema.get("required", []))
            for name, prop in query_schema.get("properties", {}).items():
                operation["parameters"].append(
                    {"name": name, "in": "query", "required": name in required, "schema": prop}
                )
        if route.idempotent:
            operation["parameters"].append(
                {
                    "name": IDEMPOTENCY_HEADER,
                    "in": "header",
                    "required": False,
                    "description": "a retry with the same key returns the first answer",
                    "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
                }
            )
        if route.body is not None:
            # a body whose every field is optional may be left out (it reads as {})
            needed = bool(route.body.model_json_schema(mode="validation").get("required"))
            operation["requestBody"] = {
                "required": needed,
                "content": {"application/json": {"schema": ref(route.body, "validation")}},
            }
        responses: dict[str, Any] = {}
        content: dict[str, Any] = {}
        if route.media is not None:
            content[route.media] = {"schema": {"type": "string", "format": "binary"}}
        if route.response is not None:
            item = ref(route.response, "serialization")
            schema = (
                {
                    "type": "object",
                    "required": ["items", "next_cursor"],
                    "properties": {
                        "items": {"type": "array", "items": item},
                        "next_cursor": {"type": ["string", "null"]},
                    },
                }
                if route.paginated
                else item
            )
            content["application/json"] = {"schema": schema}
        if content:
            responses[str(route.status)] = {"description": "OK", "content": content}
        else:
            responses[str(route.status)] = {"description": "OK"}
        statuses = set(route.errors) | ({401, 403} if route.roles is not None else set())
        if route.body is not None or route.query is not None:
            statuses.add(400)
        if route.idempotent:  # a malformed key is a 400, a key reused for another request a 409
            statuses |= {400, 409}
        if route.body is not None:  # too large, or not JSON (SPEC §9)
            statuses |= {413, 415}
        if route.hidden_from:  # for them the resource does not exist (R28)
            statuses.add(404)
        for status in sorted(statuses):
            responses[str(status)] = {
                "description": _DESCRIPTIONS[status],
                "content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}},
            }
        operation["responses"] = responses
        if route.roles is None:
            operation["security"] = []
        else:
            operation["description"] = "Roles: " + ", ".join(route.roles)
            if route.hidden_from:
                operation["description"] += (
                    f" ({', '.join(route.hidden_from)}: 404, as if it did not exist)"
                )
        if not operation["parameters"]:
            del operation["parameters"]
        paths.setdefault(route.path, {})[route.method.lower()] = operation

    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
        "security": [{"bearer": []}],
    }

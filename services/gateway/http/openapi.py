"""The OpenAPI 3.1 document of the JSON API, generated from the protobuf descriptors, so the
schemas say exactly what `json_format.MessageToJson` writes (lowerCamelCase names, int64 as
strings, enums by name, Timestamps as RFC 3339 strings)."""

from __future__ import annotations

from typing import Any

from citydata.v1 import gateway_pb2
from google.protobuf.descriptor import FieldDescriptor

_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_INT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_SINT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_UINT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_DOUBLE: {"type": "number"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
}
_WELL_KNOWN = {"google.protobuf.Timestamp": {"type": "string", "format": "date-time"}}

ERROR_SCHEMA = {
    "type": "object",
    "description": "A failed call: the gRPC status the same call would get.",
    "properties": {
        "code": {"type": "string", "description": "gRPC status name, e.g. PERMISSION_DENIED"},
        "message": {"type": "string"},
        "details": {"type": "array", "items": {"type": "object"}, "description": "google.rpc error details"},
    },
    "required": ["code", "message", "details"],
}

_AUTH: list[dict[str, list[str]]] = [{"bearer": []}, {"mutualTLS": []}]


def _field_schema(field: FieldDescriptor, components: dict[str, Any]) -> dict[str, Any]:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        assert field.message_type is not None
        schema = message_schema(field.message_type, components)
    elif field.type == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        schema = {"type": "string", "enum": [v.name for v in field.enum_type.values]}
    else:
        schema = dict(_SCALARS.get(field.type, {}))
    if field.is_repeated:
        return {"type": "array", "items": schema}
    return schema


def message_schema(descriptor: Any, components: dict[str, Any]) -> dict[str, Any]:
    """A `$ref` to the message's schema, adding it (and what it holds) to `components`."""
    if descriptor.full_name in _WELL_KNOWN:
        return dict(_WELL_KNOWN[descriptor.full_name])
    name = descriptor.full_name
    if name not in components:
        components[name] = {}  # placeholder: recursive messages refer to themselves
        components[name] = {
            "type": "object",
            "properties": {f.json_name: _field_schema(f, components) for f in descriptor.fields},
        }
    return {"$ref": f"#/components/schemas/{name}"}


def _query(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _operation(summary: str, rpc: str, response: Any, components: dict[str, Any], params: list[Any]) -> Any:
    return {
        "get": {
            "summary": summary,
            "description": f"Mirrors `citydata.v1.GatewayService/{rpc}`: same rights, purpose and audit.",
            "operationId": rpc,
            "security": _AUTH,
            "parameters": params,
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": message_schema(response, components)}},
                },
                "default": {
                    "description": "The gRPC error, as JSON",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
        }
    }


def openapi_document() -> dict[str, Any]:
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    m = gateway_pb2
    purpose = {
        "name": "x-citydata-purpose",
        "in": "header",
        "required": False,
        "description": "Purpose code; required for personal data (as with gRPC metadata). `?purpose=` works too.",
        "schema": {"type": "string"},
    }
    subject = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    paths = {
        "/v1/citizens/{id}/profile": _operation(
            "A citizen's profile (id: 12-digit national id, or the registry id)",
            "GetCitizenProfile",
            m.GetCitizenProfileResponse.DESCRIPTOR,
            components,
            [subject, purpose],
        ),
        "/v1/businesses/{id}/profile": _operation(
            "A business's profile (id: the registry id)",
            "GetBusinessProfile",
            m.GetBusinessProfileResponse.DESCRIPTOR,
            components,
            [subject],
        ),
        "/v1/kpis": _operation(
            "Dossier KPIs",
            "GetDossierKpis",
            m.GetDossierKpisResponse.DESCRIPTOR,
            components,
            [
                _query("agency", "agency code"),
                _query("procedure", "procedure code"),
                _query("level", "authority level", type="string", enum=["city", "district", "commune"]),
                _query("from", "first local day, YYYY-MM-DD", type="string", format="date"),
                _query("to", "last local day, YYYY-MM-DD", type="string", format="date"),
                _query(
                    "group_by",
                    "comma-separated: agency, procedure, level, period (default agency,period); the gRPC "
                    "KpiDimension names are accepted too (KPI_DIMENSION_AGENCY, KPI_DIMENSION_PROCEDURE, "
                    "KPI_DIMENSION_AUTHORITY_LEVEL, KPI_DIMENSION_PERIOD)",
                ),
                _query(
                    "period",
                    "day, month (default), quarter or year",
                    type="string",
                    enum=["day", "month", "quarter", "year"],
                ),
            ],
        ),
        "/v1/data-access": _operation(
            "Who accessed a person's data or dossiers",
            "ListDataAccess",
            m.ListDataAccessResponse.DESCRIPTOR,
            components,
            [
                _query("national_id", "the citizen's national id"),
                _query("registry_id", "or the citizen's or business's registry id"),
                _query("tax_code", "or a tax code (enterprise code, or a citizen's 12-digit personal tax code)"),
                _query("page_size", "at most 500", type="integer"),
                _query("page_token", "from the previous page"),
            ],
        ),
        "/v1/follow-up/kpis": _operation(
            "Directive follow-up and petition KPIs: tasks done / total per plan and agency, petitions "
            "per agency and kind, directives slow to implement",
            "GetFollowUpKpis",
            m.GetFollowUpKpisResponse.DESCRIPTOR,
            components,
            [
                _query("directive_id", "only this directive or plan"),
                _query("agency", "only this agency (tasks it leads, petitions it handles)"),
                _query(
                    "petition_kind",
                    "only petitions of this kind (the PetitionKind names are accepted too)",
                    type="string",
                    enum=["feedback", "complaint", "denunciation"],
                ),
            ],
        ),
        "/v1/read-model/status": _operation(
            "How far the read model is behind",
            "GetReadModelStatus",
            m.GetReadModelStatusResponse.DESCRIPTOR,
            components,
            [],
        ),
        "/healthz": {"get": {"summary": "Liveness", "security": [], "responses": {"200": {"description": "serving"}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "CityData gateway: JSON reads",
            "version": "v1",
            "description": "JSON mirror of the read RPCs of citydata.v1.GatewayService (proto3 JSON mapping).",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "development tokens only"},
                "mutualTLS": {"type": "mutualTLS", "description": "agency client certificate (subject OU = agency)"},
            },
        },
    }

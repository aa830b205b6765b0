"""The OpenAPI 3.1 document of the HTTP API (`GET /api/openapi.json`)."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/responses/Error"}
_UNAUTHORIZED = {"$ref": "#/components/responses/Unauthorized"}


def _json(schema_ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}}


def openapi_document(version: str = "0") -> dict[str, Any]:
    """The API description; schemas mirror `Reply.to_dict()` and the Action vocabulary."""
    action = {
        "type": "object",
        "required": ["entity", "action"],
        "properties": {
            "entity": {"type": "string", "examples": ["light.kitchen_ceiling"]},
            "action": {"type": "string", "examples": ["turn_on"]},
            "args": {"type": "object", "additionalProperties": True},
        },
    }
    reply = {
        "type": "object",
        "required": ["reply", "actions", "refused", "needs_confirmation"],
        "properties": {
            "reply": {"type": "string"},
            "actions": {"type": "array", "items": {"$ref": "#/components/schemas/Action"}},
            "refused": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string"},
                        "error": {"type": ["string", "null"]},
                        "reason": {"type": "string"},
                    },
                },
            },
            "needs_confirmation": {"type": "boolean"},
            "conversation_id": {"type": "string"},
            "path": {"type": ["string", "null"], "examples": ["local", "llm"]},
            "intent": {"type": ["object", "null"]},
            "steps": {"type": "array", "items": {"type": "object"}},
            "latency_ms": {"type": ["number", "null"]},
        },
    }
    schemas = {
        "Action": action,
        "Reply": reply,
        "ConversationRequest": {
            "type": "object",
            "required": ["text"],
            "properties": {
                "text": {"type": "string", "minLength": 1},
                "language": {
                    "type": "string",
                    "description": "BCP 47 tag of a served language (zh, zh-CN, zh-Hans are one); "
                    "default: detected from the text",
                },
                "conversation_id": {
                    "type": "string",
                    "maxLength": 128,
                    "description": "from an earlier reply: carries follow-ups",
                },
                "area": {"type": "string", "description": "area id or name of the speaker"},
            },
        },
        "ActionsRequest": {
            "type": "object",
            "required": ["actions"],
            "properties": {
                "actions": {"type": "array", "items": {"$ref": "#/components/schemas/Action"}}
            },
        },
        "Entity": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "area": {"type": ["string", "null"]},
                "aliases": {"type": "array", "items": {"type": "string"}},
                "state": {"type": "object"},
                "available": {"type": "boolean"},
                "verbs": {"type": "array", "items": {"type": "string"}},
            },
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}},
        },
    }
    secured = [{"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hubagent",
            "version": version,
            "description": "Local smart-home agent hub. Send `Authorization: Bearer <token>`.",
        },
        "paths": {
            "/api/conversation": {
                "post": {
                    "summary": "Understand a sentence and act on it within policy",
                    "security": secured,
                    "requestBody": {"required": True, "content": _json("ConversationRequest")},
                    "responses": {
                        "200": {"description": "the hub's reply", "content": _json("Reply")},
                        "400": _ERROR,
                        "401": _UNAUTHORIZED,
                    },
                }
            },
            "/api/actions": {
                "post": {
                    "summary": "Run Actions directly (same policy and audit as text)",
                    "security": secured,
                    "requestBody": {"required": True, "content": _json("ActionsRequest")},
                    "responses": {
                        "200": {"description": "what was done", "content": _json("Reply")},
                        "400": _ERROR,
                        "401": _UNAUTHORIZED,
                    },
                }
            },
            "/api/entities": {
                "get": {
                    "summary": "Entities with state and supported verbs",
                    "security": secured,
                    "parameters": [{"name": "area", "in": "query", "schema": {"type": "string"}}],
                    "responses": {
                        "200": {
                            "description": "the registry",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Entity"},
                                    }
                                }
                            },
                        },
                        "401": _UNAUTHORIZED,
                    },
                }
            },
            "/api/health": {
                "get": {
                    "summary": "Liveness and broker/store status (no token needed)",
                    "security": [],
                    "responses": {"200": {"description": "health summary"}},
                }
            },
            "/api/openapi.json": {
                "get": {
                    "summary": "This document (no token needed)",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3.1 document"}},
                }
            },
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {
                "Error": {"description": "bad request", "content": _json("Error")},
                "Unauthorized": {
                    "description": "missing or wrong token",
                    "content": _json("Error"),
                },
            },
        },
    }

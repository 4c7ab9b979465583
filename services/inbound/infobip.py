"""`/c/infobip/{uuid}/<action>`: Infobip's JSON pushes of incoming messages and delivery reports (REST_ADAPTERS.md 9)."""

from .rest_callbacks import rest_routes

ROUTES = rest_routes("infobip")

"""`/c/vonage/{uuid}/<action>`: Vonage's inbound-message and delivery-receipt webhooks (REST_ADAPTERS.md 9)."""

from .rest_callbacks import rest_routes

ROUTES = rest_routes("vonage")

"""`/c/twilio/{uuid}/<action>`: Twilio's signed receive and status webhooks (REST_ADAPTERS.md 9)."""

from .rest_callbacks import rest_routes

ROUTES = rest_routes("twilio")

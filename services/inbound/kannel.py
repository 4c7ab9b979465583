"""`/c/kannel/{uuid}/<action>`: a Kannel box's sms-service get-url and its %d delivery reports (REST_ADAPTERS.md 9)."""

from .rest_callbacks import rest_routes

ROUTES = rest_routes("kannel")

"""`/c/africastalking/{uuid}/<action>`: Africa's Talking's incoming-message and delivery-report callbacks (REST_ADAPTERS.md 9)."""

from .rest_callbacks import rest_routes

ROUTES = rest_routes("africastalking")

"""`/c/generic/{uuid}/<action>`: the generic aggregator: section 7's external routes with transport rest.generic (REST_ADAPTERS.md 9)."""

from .rest_callbacks import rest_routes

ROUTES = rest_routes("generic")

"""The API's documentation: `/openapi.json` with every schema, status and security scheme,
and Swagger UI at `/docs` served from the `fastapi-offline` package's assets (no CDN)."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from creditgate.api.schemas.common import components

ASSETS_URL = "/docs/assets"
ASSETS_DIR = str(files("fastapi_offline") / "static")


def install(app: FastAPI, *, hidden: set[str]) -> None:
    """Serve /docs and its assets, and build /openapi.json once. `hidden` paths are routes
    this server does not serve in its configuration (they answer 404), left out of the spec."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, routes=app.routes)
            for path in hidden:
                spec["paths"].pop(path, None)
            app.openapi_schema = components(spec)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

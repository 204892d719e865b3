"""The OpenDIP web platform: FastAPI app, pages and JSON API (`create_app`)."""

from opendip.web.app import create_app
from opendip.web.settings import Settings

__all__ = ["Settings", "create_app"]

"""The ServerApp: desgd.flower.server_app (registration, live server, DesgdStrategy, trace)."""

from desgd.flower.server_app import app

__all__ = ["app"]

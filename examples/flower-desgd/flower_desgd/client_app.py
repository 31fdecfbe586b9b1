"""The ClientApp: desgd.flower.client_app (Algorithm 1's client half in torch, signed messages)."""

from desgd.flower.client_app import app

__all__ = ["app"]

"""The Flower components of the example: thin re-exports of desgd.flower (the logic lives in the package)."""

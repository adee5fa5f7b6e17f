"""Active response: what the sensor does about an alert besides logging it."""

from .reset import Resetter

__all__ = ["Resetter"]

"""Stream stage: per flow direction state between decode and detect."""

from .tracker import FlowDir, FlowTable, StreamTracker

__all__ = ["FlowDir", "FlowTable", "StreamTracker"]

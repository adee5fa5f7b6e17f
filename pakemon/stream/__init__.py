"""Stream stage: TCP reassembly (``tcp``) and datagram flow state (``tracker``)."""

from .tracker import FlowDir, FlowTable, StreamTracker

__all__ = ["FlowDir", "FlowTable", "StreamTracker"]

"""Stream stage: TCP reassembly (``tcp``) and datagram flow state (``tracker``)."""

from .tracker import FlowCounters, FlowDir, FlowTable, StreamTracker

__all__ = ["FlowCounters", "FlowDir", "FlowTable", "StreamTracker"]

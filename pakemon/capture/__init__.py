"""Capture: the input edge of the pipeline.

Sources turn packets on the wire or in a file into ``(ts, linktype, frame)``
tuples for decode. ``open_capture`` reads pcap and pcapng files.
"""

from pakemon.capture.pcapfile import MAX_CAPLEN, CaptureError, CaptureReader, open_capture

__all__ = ["MAX_CAPLEN", "CaptureError", "CaptureReader", "open_capture"]

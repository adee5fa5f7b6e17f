"""Defrag stage: decoded IP fragments in, reassembled datagrams and notices out.

Target-based reassembly (Ptacek & Newsham 1998; Novak 2005): each datagram
is put back together the way its destination's IP stack would, so
overlapping fragments cannot show the sensor one payload and the host
another. ``policy`` holds the overlap rules and the Linux helpers,
``tracker`` the queues, bounds and notices.
"""

from .tracker import COUNTERS, Defragmenter

__all__ = ["COUNTERS", "Defragmenter"]

"""pakemon-xdp: a rule-based network intrusion detection system.

The core (decode, defrag, stream, detect) is sans-I/O: stages are fed
``(timestamp, frame)`` and return events. Capture (pcap files, the XDP perf
buffer) and output (logs, syslog, resets, metrics) sit at the edges.
"""

__version__ = "0.1.0"

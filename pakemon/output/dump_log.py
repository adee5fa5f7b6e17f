"""dump.log: each alert with the payload that matched (../shared/spec/outputs.md).

::

    TCP 194.168.10.12(1033)->192.168.10.5(80) Thu Jan 11 19:40:53 2001
    CGI-test-cgi (TCP * 80)
    47 45 54 20 2f 63 67 69 2d 62 69 6e 2f 74 65 73   GET /cgi-bin/tes
    74 2d 63 67 69 20 48 54 54 50 2f 31 2e 30 0d 0a   t-cgi HTTP/1.0..

Notices are not written here.
"""

from __future__ import annotations

from typing import TextIO

from pakemon.events import Alert, Notice
from pakemon.output.alert_log import alert_header, alert_title

BYTES_PER_LINE = 16
HEX_WIDTH = BYTES_PER_LINE * 3 - 1  # "xx xx ... xx": 47 characters
GAP = "   "

# Printable ASCII (0x20-0x7e) stays itself, everything else becomes ".".
_ASCII = "".join(chr(b) if 0x20 <= b <= 0x7E else "." for b in range(256))
_ASCII_TABLE = _ASCII.encode("ascii")  # for bytes.translate: the whole dump at once


def hexdump_lines(data: bytes) -> list[str]:
    """``data`` as hex dump lines (no newlines), 16 bytes a line.

    The hex column of a short last line is padded with spaces so the ASCII
    column lines up with the lines above it.
    """
    data = bytes(data)
    text = data.translate(_ASCII_TABLE).decode("ascii")
    lines = []
    for off in range(0, len(data), BYTES_PER_LINE):
        chunk = data[off : off + BYTES_PER_LINE]
        hex_col = chunk.hex(" ").ljust(HEX_WIDTH)
        lines.append(hex_col + GAP + text[off : off + BYTES_PER_LINE])
    return lines


def format_dump(alert: Alert) -> str:
    """The dump.log entry for ``alert``: header, rule + service, hex dump."""
    lines = [alert_header(alert), f"{alert_title(alert)} ({alert.rule.service})"]
    lines.extend(hexdump_lines(alert.dump))
    return "\n".join(lines) + "\n"


class DumpLogWriter:
    """Writes dump.log entries (alerts only) to an open text stream.

    Each entry is followed by an empty line. Notices are ignored. The writer
    neither opens, flushes nor closes the stream.
    """

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, event: Alert | Notice) -> None:
        if isinstance(event, Alert):
            self.stream.write(format_dump(event) + "\n")
        elif not isinstance(event, Notice):
            raise TypeError(f"not an Alert or Notice: {event!r}")

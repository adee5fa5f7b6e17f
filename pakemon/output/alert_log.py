"""alert.log: the paper's human-readable alert log (../shared/spec/outputs.md).

One entry per alert or notice, entries separated by a blank line::

    TCP 194.168.10.12(1032)->192.168.10.5(80) Thu Jan 11 19:40:51 2001
    CGI-handler(CVE-1999-0148)

    Fri Jan 12 07:25:15 2001
    invalid TCP header, from 194.168.10.12 to 192.168.10.5

Times are the packet's capture time in local time, C ``ctime`` style
(``asctime`` format: the day of the month is padded with a space, so the
first of January reads ``Thu Jan  1``).
"""

from __future__ import annotations

import math
import time
from typing import TextIO

from pakemon.events import Alert, Notice


# The last second's text, by (second, TZ): a burst of alerts shares its
# second, and localtime plus asctime cost more than the rest of the line
# (twice an alert: alert.log and dump.log). Keyed by time.tzname too, which
# time.tzset() sets when TZ changes (os.environ.get costs as much as this).
_last_ctime: list = [None, ""]


def ctime_text(ts: float) -> str:
    """Capture time ``ts`` (epoch seconds) as local ``ctime`` text.

    Fractions of a second are dropped (floored), as ``ctime`` does, so the
    text agrees with the whole second of the EVE timestamp.
    """
    sec = math.floor(ts)
    key = (sec, time.tzname)
    last = _last_ctime
    if last[0] != key:
        last[1] = time.asctime(time.localtime(sec))
        last[0] = key
    return last[1]


def _endpoint(ip: str, port: int | None) -> str:
    return ip if port is None else f"{ip}({port})"


def alert_header(alert: Alert) -> str:
    """The header line (no newline): ``TCP a(p)->b(q) <ctime>``.

    ICMP alerts carry no ports and show ``ICMP a->b <ctime>``.
    """
    return (
        f"{alert.proto} {_endpoint(alert.src_ip, alert.src_port)}->"
        f"{_endpoint(alert.dst_ip, alert.dst_port)} {ctime_text(alert.ts)}"
    )


def alert_title(alert: Alert) -> str:
    """The line naming the rule: its NAME (native) or its msg (Snort rules)."""
    return alert.rule.signature


def format_alert(alert: Alert) -> str:
    """The alert.log entry for ``alert``: header line, rule line."""
    return f"{alert_header(alert)}\n{alert_title(alert)}\n"


def format_notice(notice: Notice) -> str:
    """The alert.log entry for ``notice``: time line, message line."""
    return f"{ctime_text(notice.ts)}\n{notice.message}\n"


def format_event(event: Alert | Notice) -> str:
    if isinstance(event, Alert):
        return format_alert(event)
    if isinstance(event, Notice):
        return format_notice(event)
    raise TypeError(f"not an Alert or Notice: {event!r}")


class AlertLogWriter:
    """Writes alert.log entries to an open text stream.

    Each entry is followed by an empty line, so the file reads entry, blank
    line, entry... The writer neither opens, flushes nor closes the stream.
    """

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, event: Alert | Notice) -> None:
        self.stream.write(format_event(event) + "\n")

"""The output edge: alert.log, dump.log and eve.json (../shared/spec/outputs.md).

``LogSet(log_dir)`` opens the three logs for appending (never truncating, so
a restart loses nothing) and renders the pipeline's events into them::

    with LogSet("/var/log/pakemon") as logs:
        logs.write_many(events)     # writes every event, then flushes once

Alerts go to all three files; notices to alert.log and eve.json.
``LogSet(log_dir, max_bytes=N, keep=K)`` rotates each file by size: before
an entry that would take FILE past N bytes, FILE.K-1 -> FILE.K ... FILE ->
FILE.1 (the oldest dropped) and FILE is opened anew, so no entry is ever
split across files (an entry bigger than N goes alone into a fresh file).
``reopen()`` closes and reopens the three files by name, for logrotate
(which has moved them away): ``attach`` calls it on SIGHUP.

The formatters (``format_alert``, ``format_notice``, ``format_dump``,
``format_eve``) are pure functions and can be used on their own.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

from pakemon.events import Alert, Notice
from pakemon.output.alert_log import AlertLogWriter, format_alert, format_notice
from pakemon.output.dump_log import DumpLogWriter, format_dump
from pakemon.output.eve import EveWriter, format_eve

__all__ = [
    "ALERT_LOG",
    "DUMP_LOG",
    "EVE_LOG",
    "LogSet",
    "format_alert",
    "format_dump",
    "format_eve",
    "format_notice",
]

ALERT_LOG = "alert.log"
DUMP_LOG = "dump.log"
EVE_LOG = "eve.json"

FILE_MODE = 0o640  # logs hold captured payloads: not world readable


def _open_append(path: Path):
    """Open ``path`` for appending text, creating it if missing."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    try:
        return open(fd, "a", encoding="utf-8", errors="backslashreplace", newline="")
    except BaseException:
        os.close(fd)
        raise


def rotate_files(path: Path, keep: int) -> None:
    """path.K-1 -> path.K ... path -> path.1; path.K (the oldest) is dropped.
    keep 0: path is removed."""
    path = Path(path)
    if keep <= 0:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    for i in range(keep - 1, 0, -1):
        src = path.with_name(f"{path.name}.{i}")
        if src.exists():
            os.replace(src, path.with_name(f"{path.name}.{i + 1}"))  # drops the oldest
    if path.exists():
        os.replace(path, path.with_name(f"{path.name}.1"))


class _LogFile:
    """One log opened for appending; a ``write`` is one whole entry.

    With ``max_bytes`` > 0 the file is rotated before an entry that would
    take it past that size. The writers hold this object, so rotating or
    reopening swaps the file under them.
    """

    def __init__(self, path: Path, max_bytes: int = 0, keep: int = 5):
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self.f = None
        self.size = 0
        self.open()

    def open(self) -> None:
        self.f = _open_append(self.path)
        self.size = os.fstat(self.f.fileno()).st_size

    def write(self, text: str) -> None:
        if self.max_bytes > 0:
            n = len(text.encode("utf-8", "backslashreplace"))
            if self.size > 0 and self.size + n > self.max_bytes:
                self.rotate()
            self.size += n
        self.f.write(text)

    def rotate(self) -> None:
        self.f.close()
        self.f = None
        rotate_files(self.path, self.keep)
        self.open()

    def reopen(self) -> None:
        f, self.f = self.f, None
        if f is not None:
            f.close()
        self.open()

    def flush(self) -> None:
        self.f.flush()

    def close(self) -> None:
        f, self.f = self.f, None
        if f is not None:
            f.close()


class LogSet:
    """The three logs in one directory, opened for appending.

    ``write(event)`` writes one event and flushes; ``write_many(events)``
    writes a batch and flushes once at the end. ``flush()`` and ``close()``
    act on all three files; ``close()`` may be called more than once.
    ``max_bytes`` > 0 rotates each file by size keeping ``keep`` old ones;
    ``reopen()`` reopens the three files by name (after logrotate).
    """

    def __init__(self, log_dir: str | os.PathLike, sinks=(), max_bytes: int = 0, keep: int = 5):
        if max_bytes < 0 or keep < 0:
            raise ValueError("max_bytes and keep must not be negative")
        self.max_bytes = max_bytes
        self.keep = keep
        # more destinations for every event (syslog): objects with write/close
        self.sinks = list(sinks)
        self.pcaplog = None  # --pcap-log: a PcapLog, flushed/reopened/closed with the logs
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.alert_path = self.log_dir / ALERT_LOG
        self.dump_path = self.log_dir / DUMP_LOG
        self.eve_path = self.log_dir / EVE_LOG
        self._files = []
        try:
            self._alert_file = self._open(self.alert_path)
            self._dump_file = self._open(self.dump_path)
            self._eve_file = self._open(self.eve_path)
        except BaseException:
            self.close()
            raise
        self.alert_log = AlertLogWriter(self._alert_file)
        self.dump_log = DumpLogWriter(self._dump_file)
        self.eve = EveWriter(self._eve_file)
        self.alerts_written = 0
        self.notices_written = 0

    def _open(self, path: Path):
        f = _LogFile(path, self.max_bytes, self.keep)
        self._files.append(f)
        return f

    @property
    def closed(self) -> bool:
        return not self._files

    def _write(self, event: Alert | Notice) -> None:
        if self.closed:
            raise ValueError("write to a closed LogSet")
        if isinstance(event, Alert):
            self.alert_log.write(event)
            self.dump_log.write(event)
            self.eve.write(event)
            self.alerts_written += 1
        elif isinstance(event, Notice):
            self.alert_log.write(event)
            self.eve.write(event)
            self.notices_written += 1
        else:
            raise TypeError(f"not an Alert or Notice: {event!r}")
        for sink in self.sinks:
            sink.write(event)  # sinks count their own failures, never raise

    def write(self, event: Alert | Notice) -> None:
        """Write one event to its logs and flush."""
        self._write(event)
        self.flush()

    def write_many(self, events: Iterable[Alert | Notice]) -> int:
        """Write a batch of events, then flush once. Returns how many."""
        n = 0
        try:
            for event in events:
                self._write(event)
                n += 1
        finally:
            if not self.closed:
                self.flush()
        return n

    def flush(self) -> None:
        for f in self._files:
            f.flush()
        if self.pcaplog is not None:
            self.pcaplog.flush()

    def reopen(self) -> None:
        """Close and reopen the three files by name: logrotate moved them."""
        if self.closed:
            raise ValueError("reopen of a closed LogSet")
        for f in self._files:
            f.reopen()
        if self.pcaplog is not None:
            self.pcaplog.reopen()

    def close(self) -> None:
        sinks, self.sinks = self.sinks, []
        for sink in sinks:
            sink.close()
        pcaplog, self.pcaplog = self.pcaplog, None
        if pcaplog is not None:
            pcaplog.close()
        files, self._files = self._files, []
        error = None
        for f in files:
            try:
                f.close()
            except Exception as exc:  # close the others all the same
                error = error or exc
        if error is not None:
            raise error

    def __enter__(self) -> LogSet:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<LogSet {str(self.log_dir)!r} {state}>"

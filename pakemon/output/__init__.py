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
import time
from collections.abc import Iterable
from pathlib import Path

from pakemon.events import Alert, Notice
from pakemon.output.alert_log import AlertLogWriter, format_alert, format_notice
from pakemon.output.dump_log import DumpLogWriter, format_dump
from pakemon.output.eve import _ENCODE, EveWriter, format_eve
from pakemon.output.filestore import FileStore, fileinfo_record

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
# write_many(lazy=True): a file's pending bytes, or the seconds since the
# last flush, past which it flushes all the same
LAZY_BYTES = 256 * 1024
LAZY_S = 0.5


def _open_append(path: Path) -> int:
    """A file descriptor appending to ``path``, creating it if missing."""
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)


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
    """One log opened for appending; a ``write`` is one whole entry (text,
    or bytes as the pcap log writes them).

    Entries wait in memory until ``flush``, which hands them to the kernel
    in one write (a batch of events costs one system call, as a buffered
    file's flush did). A write the file system refuses (disk full, quota,
    I/O error) never raises: the entries that did not get out whole are
    counted in ``lost``, the error kept in ``error`` (and ``failing`` set
    until a flush succeeds) for the caller to report, an entry cut short is
    truncated away so no line or record is left torn, and later entries are
    tried again at the next flush (space may come back).

    With ``max_bytes`` > 0 the file is rotated before an entry that would
    take it past that size. The writers hold this object, so rotating or
    reopening swaps the file under them.
    """

    def __init__(self, path: Path, max_bytes: int = 0, keep: int = 5):
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self.fd = None
        self.size = 0  # bytes in the file and pending
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.lost = 0  # entries the file system refused
        self.error: OSError | None = None  # the latest refusal
        self.failing = False  # the latest flush was refused
        self.open()

    def open(self) -> None:
        self.fd = _open_append(self.path)
        self.size = os.fstat(self.fd).st_size

    def write(self, entry: str | bytes) -> None:
        data = entry.encode("utf-8", "backslashreplace") if isinstance(entry, str) else entry
        if self.max_bytes > 0 and self.size > 0 and self.size + len(data) > self.max_bytes:
            self.rotate()
        self.size += len(data)
        self.pending_bytes += len(data)
        self.pending.append(data)

    def rotate(self) -> None:
        self.close()
        rotate_files(self.path, self.keep)
        self.open()

    def reopen(self) -> None:
        self.close()
        self.open()

    def flush(self) -> None:
        if not self.pending:
            return
        entries, self.pending = self.pending, []
        self.pending_bytes = 0
        if self.fd is None:  # a reopening failed: try again, else count them
            try:
                self.open()
            except OSError as e:
                self._refused(e, entries, 0)
                return
        data = memoryview(b"".join(entries))
        done = 0
        try:
            while done < len(data):
                done += os.write(self.fd, data[done:])
        except OSError as e:
            self._refused(e, entries, done)
            return
        self.failing = False

    def _refused(self, e: OSError, entries: list[bytes], done: int) -> None:
        """Only ``done`` bytes of ``entries`` got out."""
        self.error = e
        self.failing = True
        whole = at = 0
        for b in entries:
            if at + len(b) > done:
                break
            at += len(b)
            whole += 1
        self.lost += len(entries) - whole
        self.size -= sum(len(b) for b in entries[whole:])
        if done > at and self.fd is not None:  # part of an entry got out: take it back
            try:
                os.ftruncate(self.fd, os.fstat(self.fd).st_size - (done - at))
            except OSError:
                self.size += done - at  # left torn: the file system refuses even that

    def close(self) -> None:
        try:
            self.flush()
        finally:
            fd, self.fd = self.fd, None
            if fd is not None:
                os.close(fd)


class LogSet:
    """The three logs in one directory, opened for appending.

    ``write(event)`` writes one event and flushes; ``write_many(events)``
    writes a batch and flushes once at the end (with ``lazy``, only once
    LAZY_BYTES wait in a file or LAZY_S passed since the last flush).
    ``flush()`` and ``close()``
    act on all three files; ``close()`` may be called more than once.
    ``max_bytes`` > 0 rotates each file by size keeping ``keep`` old ones;
    ``reopen()`` reopens the three files by name (after logrotate).
    """

    def __init__(self, log_dir: str | os.PathLike, sinks=(), max_bytes: int = 0, keep: int = 5,
                 report=None):
        if max_bytes < 0 or keep < 0:
            raise ValueError("max_bytes and keep must not be negative")
        # report(line): told the first time a file's writes are refused
        # (disk full, I/O error); None: silent (the losses are counted all
        # the same: ``entries_lost``)
        self.report = report
        self._reported: set = set()
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
        self._closed = False
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
        self.filestore = None  # made at the first file to store
        self._flushed_at = time.monotonic()

    def _open(self, path: Path):
        f = _LogFile(path, self.max_bytes, self.keep)
        self._files.append(f)
        return f

    def _outputs(self) -> list:
        out = list(self._files)
        if self.pcaplog is not None and self.pcaplog.file is not None:
            out.append(self.pcaplog.file)
        return out

    @property
    def entries_lost(self) -> int:
        """Log entries (and pcap-log records) the file system refused."""
        return sum(f.lost for f in self._outputs())

    def _check(self) -> None:
        # Once per file: near a full disk, small entries go through now and
        # then, and a line at each change would flood the terminal.
        for f in self._outputs():
            if f.failing and f.path not in self._reported:
                self._reported.add(f.path)
                if self.report is not None:
                    self.report(f"cannot write {f.path}: {f.error.strerror or f.error}; "
                                "what cannot be written is counted (log entries not "
                                "written), later entries are tried again")

    @property
    def closed(self) -> bool:
        return self._closed

    def _write(self, event: Alert | Notice) -> None:
        if self.closed:
            raise ValueError("write to a closed LogSet")
        if isinstance(event, Alert):
            self.alert_log.write(event)
            self.dump_log.write(event)
            self.eve.write(event)
            self.alerts_written += 1
            files = event.extra.get("files")
            if files:
                self._store(event, files)
        elif isinstance(event, Notice):
            self.alert_log.write(event)
            self.eve.write(event)
            self.notices_written += 1
        else:
            raise TypeError(f"not an Alert or Notice: {event!r}")
        for sink in self.sinks:
            sink.write(event)  # sinks count their own failures, never raise

    def _store(self, alert: Alert, files) -> None:
        """A filestore rule's files: written under filestore/, each with an
        EVE fileinfo line after its alert."""
        if self.filestore is None:
            self.filestore = FileStore(self.log_dir, self.report)
        for f in files:
            sha, stored = self.filestore.store(f.data)
            self._eve_file.write(_ENCODE(fileinfo_record(alert, f, sha, stored)) + "\n")

    def write(self, event: Alert | Notice) -> None:
        """Write one event to its logs and flush."""
        self._write(event)
        self.flush()

    def write_many(self, events: Iterable[Alert | Notice], lazy: bool = False) -> int:
        """Write a batch of events, then flush once. Returns how many.

        ``lazy``: flush only when LAZY_BYTES wait in one file or LAZY_S
        passed since the last flush, for a reader of a capture file, which
        flushes at its end: a flood of alerting frames (an ET ping flood)
        spent 12% of its time in three write(2) calls per frame. Not for
        a live sensor or a stream read as it comes, whose alerts must
        show while nothing else happens."""
        n = 0
        try:
            for event in events:
                self._write(event)
                n += 1
        finally:
            if not self.closed and (not lazy or self._flush_due()):
                self.flush()
        return n

    def _flush_due(self) -> bool:
        for f in self._files:
            if f.pending_bytes >= LAZY_BYTES:
                return True
        return time.monotonic() - self._flushed_at >= LAZY_S

    def flush(self) -> None:
        self._flushed_at = time.monotonic()
        for f in self._files:
            f.flush()
        if self.pcaplog is not None:
            self.pcaplog.flush()
        self._check()

    def reopen(self) -> None:
        """Close and reopen the three files by name: logrotate moved them."""
        if self.closed:
            raise ValueError("reopen of a closed LogSet")
        for f in self._files:
            f.reopen()
        if self.pcaplog is not None:
            self.pcaplog.reopen()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        sinks, self.sinks = self.sinks, []
        for sink in sinks:
            sink.close()
        if self.pcaplog is not None:
            self.pcaplog.close()
        error = None
        for f in self._files:
            try:
                f.close()
            except Exception as exc:  # close the others all the same
                error = error or exc
        self._check()  # the last flush may be refused too
        if error is not None:
            raise error

    def __enter__(self) -> LogSet:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<LogSet {str(self.log_dir)!r} {state}>"

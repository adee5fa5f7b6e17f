"""filestore: the files of alerts whose rule says ``filestore``, written in
Suricata's filestore v2 layout, ``<log dir>/filestore/<sha256[:2]>/<sha256>``
(one copy of a file however often it comes), each with an EVE ``fileinfo``
line beside the alert.

A file the file system refuses is counted (``lost``) and told once through
``report``; the alert itself is written all the same.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pakemon.events import Alert, eve_text
from pakemon.output.eve import alert_record

FILESTORE_DIR = "filestore"


class FileStore:
    def __init__(self, log_dir, report=None):
        self.base = Path(log_dir) / FILESTORE_DIR
        self.report = report
        self.stored = 0  # files written (a file already there is not again)
        self.lost = 0  # files the file system refused
        self._told = False

    def store(self, data: bytes) -> tuple[str, bool]:
        """(sha256 hex, whether the file is on disk now)."""
        sha = hashlib.sha256(data).hexdigest()
        path = self.base / sha[:2] / sha
        if path.exists():
            return sha, True
        tmp = path.with_name(sha + ".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError as e:
            self.lost += 1
            if not self._told and self.report is not None:
                self._told = True
                self.report(f"cannot store a file in {self.base}: {e.strerror or e}; "
                            "files not stored are counted")
            return sha, False
        self.stored += 1
        return sha, True


def fileinfo_record(alert: Alert, f, sha: str, stored: bool) -> dict:
    """The EVE ``fileinfo`` object of file ``f`` (``FileInfo``) stored for
    ``alert``: the alert's flow fields, then Suricata's fileinfo keys."""
    rec = alert_record(alert)
    rec["event_type"] = "fileinfo"
    out = {k: rec[k] for k in ("timestamp", "flow_id", "pcap_cnt", "event_type", "src_ip",
                               "src_port", "dest_ip", "dest_port", "proto", "community_id",
                               "tx_id", "app_proto", "http")
           if k in rec}
    out["fileinfo"] = {
        "filename": eve_text(f.name),
        "sid": [rec["alert"]["signature_id"]],
        "gaps": False,
        "state": "CLOSED" if f.complete else "TRUNCATED",
        "sha256": sha,
        "stored": stored,
        "size": len(f.data),
    }
    return out

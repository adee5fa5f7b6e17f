"""The files of a transaction, as Suricata's file tracking sees them, for
the file keywords (filename, fileext, file.name, filesize, filemd5/sha1/
sha256, filemagic) and filestore.

An HTTP response body is a file named by its Content-Disposition
``filename``, else by the request's normalized URI path (libhtp's
HtpResponseBodyHandle); a request's files are its multipart/form-data
parts with a file name, else the body of a PUT or POST, named by the path
(HtpRequestBodyHandlePOSTorPUT); the SMTP stage gives each attachment with
its name. ``file_ok(checks, file)`` applies a rule's ``FileCheck``s.
"""

from __future__ import annotations

import hashlib
import re

from .http_normalize import normalize_uri

# the bytes of a file libmagic reads (Suricata gives it the first chunk kept)
FILEMAGIC_BYTES = 4096
_MAGIC: list = []  # the libmagic handle, made at first use (None: no module)


def file_magic(data: bytes) -> bytes | None:
    """libmagic's description of ``data`` (lower-cased; Suricata's
    ``filemagic`` text), or None without the ``magic`` module."""
    if not _MAGIC:
        try:
            import magic
            _MAGIC.append(magic.Magic())
        except Exception:  # (ImportError, or a libmagic without its database)
            _MAGIC.append(None)
    m = _MAGIC[0]
    if m is None:
        return None
    try:
        return m.from_buffer(bytes(data[:FILEMAGIC_BYTES])).encode("utf-8", "replace").lower()
    except Exception:  # (libmagic refusing odd bytes: no description)
        return b""


class FileInfo:
    """One file of a transaction, as the file keywords see it: ``name``
    (bytes), ``data`` (what was kept of it: the whole file when
    ``complete``, not cut at a body limit)."""

    __slots__ = ("name", "data", "complete", "_digests", "_magic")

    def __init__(self, name: bytes, data: bytes, complete: bool):
        self.name = name
        self.data = data
        self.complete = complete
        self._digests: dict = {}
        self._magic = None

    def digest(self, kind: str) -> bytes:
        d = self._digests.get(kind)
        if d is None:
            d = self._digests[kind] = hashlib.new(kind, self.data).digest()
        return d

    def magic(self) -> bytes | None:
        if self._magic is None:
            self._magic = file_magic(self.data)
        return self._magic


def file_ok(checks, f) -> bool:
    """Whether file ``f`` passes a rule's file keywords (``FileCheck``).

    As Suricata, a size or digest is known once the file is whole: a file
    cut at the body limit can still be larger than a ``filesize:>N``, but
    not equal to or smaller than anything, and has no digest."""
    for c in checks:
        kind = c.kind
        if kind == "size":
            cmp = c.arg
            if not cmp.matches(len(f.data)) or not (f.complete or cmp.op in (">", ">=")):
                return False
        elif kind == "magic":
            text = f.magic() if f.data else None
            if text is None or (c.arg in text) == c.negated:
                return False
        else:  # md5, sha1, sha256
            if not f.complete or (f.digest(kind) in c.arg) == c.negated:
                return False
    return True


_CD_FILENAME = re.compile(rb"""filename\s*=\s*(?:"([^"]*)"?|([^;\s]*))""", re.IGNORECASE)


def disposition_name(value: bytes | None) -> bytes | None:
    """The ``filename=`` of a Content-Disposition value (quotes dropped), as
    Suricata's HTTPParseContentDispositionHeader reads it."""
    if not value:
        return None
    m = _CD_FILENAME.search(value)
    if m is None:
        return None
    return m.group(1) if m.group(1) is not None else m.group(2)


def uri_path(target: bytes, pers) -> bytes:
    """The normalized path of a request target, without its query: the
    name libhtp gives a file it has no other name for."""
    try:
        uri = normalize_uri(target, pers or "generic")[0]
    except Exception:  # (never let a normalizer bug drop the file)
        uri = target
    return uri.split(b"?", 1)[0]


def request_files(req, pers) -> list:
    """The files of a request, as Suricata's HTTP file tracking: each
    multipart/form-data part with a file name, else the body of a PUT or
    POST, named by the URI path."""
    method = req.method.upper()
    if req.body_length <= 0 or method not in (b"POST", b"PUT"):
        return []
    complete = req.complete and req.body_length == len(req.body)
    ctype = b""
    for n, v in req.headers:
        if n.lower() == b"content-type":
            ctype = v
            break
    if method == b"POST" and ctype.lower().lstrip().startswith(b"multipart/"):
        return multipart_files(ctype, req.body, complete)
    return [FileInfo(uri_path(req.target, pers), req.body, complete)]


def multipart_files(ctype: bytes, body: bytes, complete: bool) -> list:
    """The named parts of a multipart body (Python's email parser, as the
    SMTP stage uses); the last part is whole only if the body was."""
    import email.parser
    import email.policy

    out = []
    try:
        msg = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(
            b"Content-Type: " + ctype + b"\r\n\r\n" + body)
        if not msg.is_multipart():
            return []
        parts = [p for p in msg.walk() if not p.is_multipart()]
        for i, part in enumerate(parts):
            name = part.get_filename()
            if name is None:
                continue
            data = part.get_payload(decode=True) or b""
            out.append(FileInfo(str(name).encode("utf-8", "surrogateescape"), data,
                                complete or i < len(parts) - 1))
    except Exception:  # (a body the parser chokes on: the files found so far)
        pass
    return out

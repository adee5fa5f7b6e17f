"""The ``asn1`` rule keyword's checks on BER-encoded bytes (Suricata's
``detect-asn1``, after Snort's ``asn1`` option).

``asn1_matches(data, check)`` decodes BER objects from ``data`` one after
the other (at most ``MAX_FRAMES`` top-level objects, nesting at most
``MAX_FRAMES`` deep) and is True when one of them, or one nested in it, is:

* ``oversize_length N``: an object whose length (as encoded, or its content
  as present) is over N;
* ``bitstring_overflow``: a primitive universal BIT STRING whose
  unused-bits octet says more bits are unused than the string holds
  (MS04-007's ASN.1 library overflow);
* ``double_overflow``: a primitive universal REAL in a decimal (ASCII)
  encoding, first content octet with bits 8 and 7 clear, longer than 256
  octets (an overflow of the same library).

Decoding stops at the first object that is not well formed or runs past the
end of the data; the objects before it are checked, the broken one is not
(Suricata's rust decoder keeps what it parsed too). Unlike that decoder,
the content of every constructed object is searched, of any class: the
exploits these checks were written for (SPNEGO blobs in SMB session setups)
hide the bad BIT STRING inside application and context-specific tags, where
Snort's decoder and Suricata's C decoder (4.x) found it.
"""

from __future__ import annotations

MAX_FRAMES = 30  # Suricata's default max_frames: objects, and nesting depth
_BIT_STRING, _REAL = 3, 9


class _Broken(Exception):
    pass


def _header(data: bytes, p: int, end: int):
    """(class, constructed, tag, length or None for indefinite, content start)."""
    if p >= end:
        raise _Broken
    b = data[p]
    cls, constructed, tag = b >> 6, bool(b & 0x20), b & 0x1F
    p += 1
    if tag == 0x1F:  # high tag number: base-128 octets
        tag = 0
        for _ in range(5):
            if p >= end:
                raise _Broken
            c = data[p]
            p += 1
            tag = (tag << 7) | (c & 0x7F)
            if not c & 0x80:
                break
        else:
            raise _Broken
    if p >= end:
        raise _Broken
    b = data[p]
    p += 1
    if b < 0x80:
        return cls, constructed, tag, b, p
    if b == 0x80:
        if not constructed:
            raise _Broken  # indefinite length needs a constructed object
        return cls, constructed, tag, None, p
    k = b & 0x7F
    if k > 8 or p + k > end:
        raise _Broken
    return cls, constructed, tag, int.from_bytes(data[p:p + k], "big"), p + k


def _check(data, p, end, depth, oversize, bitstring, double) -> tuple[bool, int]:
    """(matched, end of the object) of the object at ``p``."""
    if depth <= 0:
        raise _Broken
    cls, constructed, tag, length, c = _header(data, p, end)
    if length is None:  # indefinite: children up to the end-of-contents octets
        q = c
        while True:
            if q + 2 <= end and data[q] == 0 and data[q + 1] == 0:
                return False, q + 2
            hit, q = _check(data, q, end, depth - 1, oversize, bitstring, double)
            if hit:
                return True, q
    stop = c + length
    if stop > end:
        raise _Broken  # runs past the data: not an object we can read
    if oversize is not None and length > oversize:
        return True, stop
    if cls == 0 and not constructed and length > 0:
        if bitstring and tag == _BIT_STRING and data[c] > length * 8:
            return True, stop
        if double and tag == _REAL and data[c] & 0xC0 == 0 and length > 256:
            return True, stop
    if constructed:
        q = c
        while q < stop:
            hit, q = _check(data, q, stop, depth - 1, oversize, bitstring, double)
            if hit:
                return True, q
    return False, stop


def asn1_matches(data: bytes, oversize_length=None, bitstring_overflow=False,
                 double_overflow=False) -> bool:
    """Whether one BER object of ``data`` (from its start) fails a check."""
    p, end, n = 0, len(data), 0
    while p < end and n < MAX_FRAMES:
        n += 1
        try:
            hit, p = _check(data, p, end, MAX_FRAMES, oversize_length, bitstring_overflow,
                            double_overflow)
        except _Broken:  # (nesting is bounded by MAX_FRAMES: no RecursionError)
            return False
        if hit:
            return True
    return False

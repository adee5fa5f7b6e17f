"""Decode stage: captured frames to ``Packet`` objects."""

from pakemon.decode.decoder import (
    MAX_VLAN_TAGS,
    SUPPORTED_LINKTYPES,
    DecodeError,
    decode_frame,
    decode_transport,
    format_addr,
)
from pakemon.decode.packet import Packet

__all__ = [
    "MAX_VLAN_TAGS",
    "SUPPORTED_LINKTYPES",
    "DecodeError",
    "Packet",
    "decode_frame",
    "decode_transport",
    "format_addr",
]

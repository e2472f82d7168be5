"""A bundle's zip must hold exactly what its central directory lists, once each.

Zip readers disagree about ambiguous archives. With two members of one name Python reads the
last while other tools show the first; with a second archive glued in front of the bundle (or
bytes between members), Python sees only the bundle while a streaming reader shows the glued
members; a local header whose sizes differ from the central directory's makes a streaming
reader extract other bytes than the verifier checked. The verifier refuses all of these, so the
files a person opens are the files it verified.

The exporter (Python's zipfile on a seekable file) writes members back to back from offset 0,
each local header agreeing with the central directory, no data descriptors, no archive comment.
"""

from __future__ import annotations

import struct
import zipfile
from collections import Counter
from typing import IO

# zipfile.structFileHeader and zipfile.structEndArchive (zip APPNOTE 4.3.7 and 4.3.16)
LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
LOCAL_SIGNATURE = b"PK\x03\x04"
END_RECORD = struct.Struct("<4s4H2LH")
END_SIGNATURE = b"PK\x05\x06"
DATA_DESCRIPTOR_FLAG = 0x08
ZIP64_SIZE = 0xFFFFFFFF


def duplicate_names(zf: zipfile.ZipFile) -> list[str]:
    """Member names that occur more than once in the central directory."""
    counts = Counter(info.filename for info in zf.infolist())
    return sorted(name for name, n in counts.items() if n > 1)


def layout_problem(zf: zipfile.ZipFile) -> str:
    """What makes the archive ambiguous, or "" when every byte belongs to a listed member,
    the central directory or its end record."""
    fp = zf.fp
    if fp is None:  # pragma: no cover - the verifier passes an open archive
        return "the zip is closed"
    fp.seek(0, 2)
    size = fp.tell()
    fp.seek(max(size - END_RECORD.size, 0))
    end = fp.read(END_RECORD.size)
    if len(end) < END_RECORD.size or end[:4] != END_SIGNATURE or end[-2:] != b"\x00\x00":
        return "the zip carries a comment or bytes after its end record"
    offset = 0
    for info in sorted(zf.infolist(), key=lambda i: i.header_offset):
        if info.header_offset != offset:
            where = "before its first member" if offset == 0 else f"before {info.filename!r}"
            return f"the zip holds {info.header_offset - offset} bytes no member lists, {where}"
        problem, header_bytes = _local_header(fp, info)
        if problem:
            return problem
        offset += header_bytes + info.compress_size
    start_dir = int(getattr(zf, "start_dir", offset))
    if start_dir != offset:
        return f"the zip holds {start_dir - offset} bytes no member lists, after its last member"
    return ""


def _local_header(fp: IO[bytes], info: zipfile.ZipInfo) -> tuple[str, int]:
    """(problem or "", size of the local header with its name and extra field)."""
    fp.seek(info.header_offset)
    raw = fp.read(LOCAL_HEADER.size)
    if len(raw) < LOCAL_HEADER.size:
        return f"{info.filename!r}: its local header is cut short", 0
    header = LOCAL_HEADER.unpack(raw)
    if header[0] != LOCAL_SIGNATURE:
        return f"{info.filename!r}: no local header where the central directory points", 0
    flags, crc, compressed, plain, name_len, extra_len = header[3], *header[7:12]
    if flags & DATA_DESCRIPTOR_FLAG:
        return f"{info.filename!r} is written with a data descriptor (not by the exporter)", 0
    name = fp.read(name_len).decode("utf-8" if flags & 0x800 else "cp437", "replace")
    if name != info.filename:
        return f"{info.filename!r}: its local header names {name!r}", 0
    sizes_differ = (compressed, plain) != (info.compress_size, info.file_size)
    if crc != info.CRC or (sizes_differ and ZIP64_SIZE not in (compressed, plain)):
        return f"{info.filename!r}: its local header disagrees with the central directory", 0
    return "", LOCAL_HEADER.size + name_len + extra_len

"""Tar shards for ``compute_stats``: the WebDataset layout, ``*.tar`` files whose members are a
sample's image and its other fields (``000001.jpg``, ``000001.cls``, ``000001.json``, ...).

A shard is read in parts of ``PART_BYTES``, each a task for one worker process: the members
whose headers start in that byte range, read one by one with ``tarfile`` straight from the
archive (nothing is extracted to disk). A part finds its first member by hopping over the
headers before it (512 bytes read each, no data), then hands the archive to ``tarfile`` from
there. The parts depend on the shard's size only, never on the number of workers or ranks, so
the counts come back in the same order for any of them. Image members (the suffixes of
``IMAGE_EXTENSIONS``) are decoded as files are (``cv2.imdecode``, ``IMREAD_UNCHANGED``); other
members are passed over.
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass
from typing import BinaryIO

from .files import FilesResult, decode_image, is_image_name

#: Bytes of a shard that one task reads: a 1 GiB shard of 100 KiB images is 4 tasks, the last
#: of which hops over ~15,000 headers (images and labels) first, in ~0.04 s.
PART_BYTES = 256 << 20

# Header types (ustar typeflag) that the hop passes over as tarfile would: extended headers that
# belong to the member after them (pax, GNU long name and long link); members whose data follows
# their header (regular files); members without data (links, devices, folders, fifos). Any other
# (a pax global header, GNU sparse files, vendor types) leaves the walk to tarfile.
_EXTENDED_TYPES = (b"x", b"L", b"K")
_DATA_TYPES = (b"0", b"\0", b"7")
_NO_DATA_TYPES = (b"1", b"2", b"3", b"4", b"5", b"6")

# How much of the bytes after a shard's last header is read at a time to see that they are the
# end-of-archive zeros (10 KiB in a tar that tarfile or GNU tar wrote).
_TAIL_READ = 1 << 20


def shard_parts(path: str) -> list[ShardPart]:
    """The tasks that read one shard, in order; one for an empty or a small file."""
    size = os.path.getsize(path)
    starts = range(0, size, PART_BYTES) or range(1)
    return [ShardPart(path, start, min(start + PART_BYTES, size)) for start in starts]


@dataclass(frozen=True)
class ShardPart:
    """A task: the image members of the shard at ``path`` whose headers start at a byte in
    ``[start, stop)``. A problem with the archive itself (not a tar, truncated, a broken
    header) is reported once, by the part whose range holds the byte where it was found."""

    path: str
    start: int
    stop: int

    @property
    def amount(self) -> int:
        """What this task adds to the progress bar: its bytes."""
        return self.stop - self.start

    def count(self, nonzero: bool = False) -> FilesResult:
        """Decode and count the part's image members (in a worker process)."""
        result = FilesResult(nonzero=nonzero)
        problem = self._read(result)
        if problem is not None and self._holds(problem[0]):
            result.unreadable.append((self.path, problem[1]))
        return result

    def _read(self, result: FilesResult) -> tuple[int, str] | None:
        """Count this part's image members into ``result``; where and why reading the archive
        failed, if it did."""
        position = 0  # where reading went wrong, for the part that holds that byte to report
        try:
            size = os.path.getsize(self.path)
            with open(self.path, "rb") as file:
                position = _first_member_from(file, self.start) if self.start else 0
                file.seek(position)
                with tarfile.open(fileobj=file, mode="r:") as tar:  # reads on from there
                    return self._count_members(tar, size, result)
        except (tarfile.TarError, OSError) as error:
            if position:  # a damaged header where this part starts reading: its own byte
                return position, f"damaged or truncated at byte {position} ({error})"
            return 0, f"cannot read it as a tar file ({error})"

    def _count_members(self, tar: tarfile.TarFile, size: int, result: FilesResult) -> tuple[int, str] | None:
        """Count the members of this part, from the first one ``tar`` reads; as :meth:`_read`."""
        member: tarfile.TarInfo | None = None
        while True:
            try:
                following = tar.next()
            except (tarfile.TarError, OSError) as error:
                # Past the end of the file when the last member's data is cut short: the
                # part that holds that member reports it.
                at = tar.offset if member is None or tar.offset < size else member.offset
                return at, f"damaged or truncated at byte {at} ({error})"
            if following is None:  # tarfile stops quietly at a header it cannot parse
                end = tar.offset
                if self._holds(end) and _garbage_after(self.path, end):
                    return end, f"no valid tar header at byte {end}: the members after it are not read"
                return None
            member = following
            tar.members = []  # tarfile keeps every header it read; a shard can hold millions
            if member.offset >= self.stop:
                return None
            if member.offset < self.start or not member.isfile() or not is_image_name(member.name):
                continue
            try:
                data = tar.extractfile(member).read()
            except (tarfile.TarError, OSError) as error:
                return member.offset, f"damaged or truncated in member {member.name} ({error})"
            result.count(f"{self.path}:{member.name}", decode_image(data))

    def _holds(self, position: int) -> bool:
        # An empty shard's one part holds byte 0, where its error is found.
        return self.start <= position < max(self.stop, self.start + 1)


def _first_member_from(file: BinaryIO, start: int) -> int:
    """The offset of the first member whose headers begin at or after ``start`` (or of the end
    of the archive), found by reading the headers alone; 0, for tarfile to walk from the
    beginning, at a header the hop does not read as tarfile would (or at a damaged one, where
    tarfile stops)."""
    offset = member = 0
    while member < start:
        file.seek(offset)
        header = file.read(tarfile.BLOCKSIZE)
        if len(header) < tarfile.BLOCKSIZE:
            return 0
        if not header.strip(b"\0"):  # the end-of-archive zeros: tarfile finds no member there
            return offset if offset == member else 0
        try:
            checksum, size = tarfile.nti(header[148:156]), tarfile.nti(header[124:136])
        except tarfile.HeaderError:
            return 0
        # The unsigned sum first: tarfile's check, which also takes a signed one, costs 16 µs.
        unsigned = 256 + sum(header[:148]) + sum(header[156:])
        valid = checksum == unsigned or checksum in tarfile.calc_chksums(header)
        kind = header[156:157]
        if kind == b"\0" and header[:100].split(b"\0", 1)[0].endswith(b"/"):
            kind = b"5"  # an old-style folder
        data = kind in _EXTENDED_TYPES or kind in _DATA_TYPES
        if not valid or not (data or (kind in _NO_DATA_TYPES and size == 0)):
            return 0
        if kind == b"x" and b" size=" in file.read(size):
            return 0  # the member's size is in the pax record, not in its header
        offset += tarfile.BLOCKSIZE + (-(-size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE if data else 0)
        if kind not in _EXTENDED_TYPES:
            member = offset
    return member


def _garbage_after(path: str, end: int) -> bool:
    """Whether anything but the end-of-archive zeros follows the last header at ``end``:
    tarfile stops quietly at a header it cannot parse, which would leave the rest uncounted."""
    with open(path, "rb") as file:
        file.seek(end)
        while chunk := file.read(_TAIL_READ):
            if chunk.strip(b"\0"):
                return True
    return False

"""Read one FASTQ file (gzip or plain) as blocks of whole records, digesting it on the way.

A thread per file reads and decompresses in large chunks (with ISA-L, twice as fast as zlib here;
it and SHA-256 release the GIL), so the converter's main thread only splits lines. The queue between
them bounds the memory used.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import threading
from collections import namedtuple
from collections.abc import Callable

from isal import isal_zlib

from hca_archive.convert.errors import ConversionError

READ_SIZE = 256 << 10
# Decompressed bytes per queue item, bounding a gzip bomb's memory use. Small, as BLOCK_READS
# (converter.py): what the reader hands over is still in the cache when it is split.
MAX_CHUNK = 256 << 10
QUEUE_DEPTH = 2
# Longest line taken before the file is refused as not FASTQ: a line waits whole in memory
# until its end, so input without line breaks (a gzip bomb of zeros, a binary file) would
# otherwise be held entire. Far beyond any sequencer's read.
MAX_LINE = 64 << 20
# Decompressed bytes one take() reads at most once it has a whole record: a block of long reads
# is cut short rather than held whole (1,000 10x reads are ~0.3 MB; the converter gives back
# what the other files' blocks hold beyond the shortest).
MAX_TAKE_BYTES = 8 << 20
GZIP_MAGIC = b"\x1f\x8b"


class FastqDigest(namedtuple("FastqDigest", "path sha256 bytes reads")):
    """What was read from one input: SHA-256 and size of the decompressed content, record count.

    SHA-256 rather than MD5: with the CPU's SHA extensions it hashes twice as fast here."""

    __slots__ = ()

    path: str
    sha256: str
    bytes: int
    reads: int


class _TruncatedGzip(Exception):
    pass


def _decompressed_chunks(path: str, count_read: Callable[[int], None] | None = None):
    """The file's content, inflated when it is gzip; `count_read` is told each stored byte read."""
    with open(path, "rb") as handle:

        def read() -> bytes:
            raw = handle.read(READ_SIZE)
            if count_read is not None:
                count_read(len(raw))
            return raw

        raw = read()
        if raw[:2] != GZIP_MAGIC:
            while raw:
                yield raw
                raw = read()
            return
        decompressor = isal_zlib.decompressobj(isal_zlib.MAX_WBITS | 16)
        while raw:
            data = decompressor.decompress(raw, MAX_CHUNK)
            while decompressor.unconsumed_tail:
                yield data
                data = decompressor.decompress(decompressor.unconsumed_tail, MAX_CHUNK)
            yield data
            if decompressor.eof:  # next gzip member, as written by bgzip or `cat a.gz b.gz`
                raw = decompressor.unused_data
                decompressor = isal_zlib.decompressobj(isal_zlib.MAX_WBITS | 16)
                if not raw:
                    raw = read()
                    if not raw:
                        return
            else:
                raw = read()
        with contextlib.suppress(isal_zlib.error):  # the error to tell is the truncation
            if rest := decompressor.flush():  # what the inflater held back, waiting for input
                yield rest
        raise _TruncatedGzip


class FastqStream:
    """Whole FASTQ records of one file, taken in blocks of lines (four per record)."""

    def __init__(self, read_index: str, path: str | os.PathLike[str]):
        self.read_index = read_index
        self.path = os.fspath(path)
        self.reads = 0  # records handed out so far
        self._no_final_newline = False  # the file's last line has no line break
        self.stored_bytes_read = 0  # of the file as stored (gzip), by the reading thread
        self._sha256 = hashlib.sha256()
        self._bytes = 0
        self._queue: queue.Queue = queue.Queue(QUEUE_DEPTH)
        self._stop = threading.Event()
        self._lines: list[bytes] = []  # whole lines read and not yet handed out
        self._unfinished: list[bytes] = []  # pieces of the line after them
        self._unfinished_bytes = 0
        self._eof = False
        if not os.path.isfile(self.path):
            raise ConversionError(f"{read_index} ({self.path}): no such file")
        self._thread = threading.Thread(
            target=self._produce, name=f"read-{read_index}", daemon=True
        )
        self._thread.start()

    def describe(self, read_number: int) -> str:
        return f"{self.read_index} ({os.path.basename(self.path)}) read {read_number}"

    def _produce(self) -> None:
        try:
            for chunk in _decompressed_chunks(self.path, self._count_stored):
                if self._stop.is_set():
                    return
                self._sha256.update(chunk)
                self._bytes += len(chunk)
                self._queue.put(chunk)
            self._queue.put(None)
        except Exception as error:  # handed to the consumer, which knows the read number
            self._queue.put(error)

    def _count_stored(self, count: int) -> None:
        self.stored_bytes_read += count

    def _next_chunk(self) -> bytes | None:
        item = self._queue.get()
        if isinstance(item, Exception):
            self._eof = True
            where = self.describe(self.reads + len(self._lines) // 4 + 1)  # the first not whole
            if isinstance(item, _TruncatedGzip):
                raise ConversionError(f"{where}: gzip data is truncated")
            raise ConversionError(f"{where}: cannot read: {item}") from item
        return item

    @property
    def missing_final_newline(self) -> bool:
        """Whether the last record handed out is the file's last and has no final line break."""
        return self._no_final_newline and not self._lines

    def take(self, reads: int) -> list[bytes]:
        """Lines (without line breaks) of the next `reads` records; fewer at end of file, or
        when MAX_TAKE_BYTES are read before them (at least one record then).

        Each chunk is split into lines once, as it arrives: what a block leaves over is never
        copied again.
        """
        wanted = 4 * reads
        read_now = 0
        while len(self._lines) < wanted and not self._eof:
            if read_now >= MAX_TAKE_BYTES and len(self._lines) >= 4:
                break
            chunk = self._next_chunk()
            if chunk is None:
                self._eof = True
                continue
            read_now += len(chunk)
            pieces = chunk.split(b"\n")
            if len(pieces) > 1:
                if self._unfinished:
                    pieces[0] = b"".join([*self._unfinished, pieces[0]])
                    self._unfinished = []
                self._unfinished_bytes = 0
            self._unfinished.append(pieces.pop())
            self._unfinished_bytes += len(self._unfinished[-1])
            self._lines += pieces
            if self._unfinished_bytes > MAX_LINE:
                where = self.describe(self.reads + len(self._lines) // 4 + 1)
                raise ConversionError(f"{where}: a line longer than {MAX_LINE} bytes: not FASTQ")
        if len(self._lines) >= wanted or not self._eof:  # all wanted, or as many as were read
            count = min(wanted, len(self._lines) // 4 * 4)
            lines = self._lines[:count]
            del self._lines[:count]
        else:
            lines, self._lines = self._lines, []
            last = b"".join(self._unfinished)
            self._unfinished = []
            # A last record with no bases and no final line break ends "+\n": its (empty)
            # quality line is the nothing after that break.
            if last or (len(lines) % 4 == 3 and lines[-2] == b""):
                lines.append(last)
                self._no_final_newline = True
            if len(lines) % 4:
                # a file that is not FASTQ at all ends "incomplete" too: name its first bad line
                for number, header in enumerate(lines[0::4], start=self.reads + 1):
                    if not header.startswith(b"@"):
                        shown = header[:60].decode("latin-1")
                        raise ConversionError(
                            f"{self.describe(number)}: not a FASTQ header line: {shown!r}"
                        )
                first = self.reads + len(lines) // 4 + 1
                raise ConversionError(
                    f"{self.describe(first)}: incomplete record at end of file "
                    f"({len(lines) % 4} of 4 lines)"
                )
        self.reads += len(lines) // 4
        return lines

    def give_back(self, lines: list[bytes]) -> None:
        """Put back the last whole records taken, unused: another file's block was shorter."""
        self._lines[:0] = lines
        self.reads -= len(lines) // 4

    def digest(self) -> FastqDigest:
        self._thread.join()
        return FastqDigest(self.path, self._sha256.hexdigest(), self._bytes, self.reads)

    def close(self) -> None:
        """Stop the reader thread early (after an error), freeing the queue it may block on."""
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.1)

"""BGZF compression with libdeflate, run in a process of its own (see bam_pipes.BamWriter).

The converter writes uncompressed BAM into a pipe; this cuts it into blocks of htslib's size and
compresses them in threads. libdeflate gives zlib's ratio in about a third of the time. Levels
are samtools' (0-9), which htslib maps onto libdeflate's 0-12 scale; this does the same, so one
level means the same work in both tools. Its process is separate because its threads, sharing a
GIL with the converter's busy main thread, would wait for it at every 64 KB block.
"""

from __future__ import annotations

import io
import queue
import struct
import threading
import zlib
from collections.abc import Iterator

import deflate

HEADER = struct.Struct("<4BI2BH2BHH")  # gzip header with BGZF's BC extra field
TRAILER = struct.Struct("<II")  # CRC32, uncompressed size
MAX_BLOCK = 1 << 16  # a whole BGZF block, header to trailer, is at most 64 KiB
BLOCK_PAYLOAD = 0xFF00  # uncompressed bytes per block, as htslib writes them
# The converter's main thread is the one part that cannot run in parallel; when it and these
# threads want the same cores, it should win (measured: 4% faster on 500,000 reads, 5% on 25,000).
NICENESS = 10
IN_FLIGHT_PER_THREAD = 4
# libdeflate's level for each samtools level, htslib's table: Debian's samtools writes at level 6
# exactly the blocks libdeflate makes at 7 (tests/convert/test_bgzf.py checks every level).
LIBDEFLATE_LEVELS = (0, 1, 2, 3, 5, 6, 7, 8, 10, 12)
# The 28-byte empty block that marks the end of a BGZF file (SAM/BAM specification 4.1.2).
EOF_BLOCK = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


def libdeflate_level(level: int) -> int:
    """libdeflate's level for samtools' `level` (0-9)."""
    if not isinstance(level, int) or not 0 <= level < len(LIBDEFLATE_LEVELS):
        raise ValueError(f"BGZF compression level must be 0 to 9, not {level!r}")
    return LIBDEFLATE_LEVELS[level]


def payloads(source: io.BufferedIOBase) -> Iterator[bytes]:
    """`source` in pieces of BLOCK_PAYLOAD bytes (the last one shorter)."""
    while payload := source.read(BLOCK_PAYLOAD):
        yield payload


def compress_block(payload: bytes, libdeflate_level: int) -> bytes:
    """One BGZF block holding `payload` (at most BLOCK_PAYLOAD bytes)."""
    data = deflate.deflate_compress(payload, libdeflate_level) if libdeflate_level > 0 else b""
    if not data or len(data) + HEADER.size + TRAILER.size > MAX_BLOCK:
        data = zlib.compress(payload, 0, wbits=-15)  # stored: always fits
    header = HEADER.pack(31, 139, 8, 4, 0, 0, 255, 6, 66, 67, 2, len(data) + 25)
    return header + data + TRAILER.pack(deflate.crc32(payload), len(payload))


def _compress_each(
    inbox: queue.SimpleQueue, outbox: queue.SimpleQueue, libdeflate_level: int
) -> None:
    while (item := inbox.get()) is not None:
        number, payload = item
        try:
            outbox.put((number, compress_block(payload, libdeflate_level)))
        except Exception as error:  # handed to the writing thread
            outbox.put((number, error))


def compress(
    source: io.BufferedIOBase, target: io.BufferedIOBase, level: int, threads: int
) -> None:
    """Write what `source` holds to `target` as BGZF at samtools' `level`, with the EOF block.

    Every thread takes the next block as soon as it is free, so a thread the scheduler holds
    back (this process is niced) does not stall the others; blocks are written in order.
    """
    inbox: queue.SimpleQueue = queue.SimpleQueue()
    outbox: queue.SimpleQueue = queue.SimpleQueue()
    workers = [
        threading.Thread(
            target=_compress_each, args=(inbox, outbox, libdeflate_level(level)), daemon=True
        )
        for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    in_flight = IN_FLIGHT_PER_THREAD * threads  # bounds memory; keeps every thread busy
    finished: dict[int, bytes] = {}
    submitted = written = 0

    def write_next() -> None:
        nonlocal written
        while written not in finished:
            number, block = outbox.get()
            if isinstance(block, Exception):
                raise block
            finished[number] = block
        target.write(finished.pop(written))
        written += 1

    try:
        for payload in payloads(source):
            inbox.put((submitted, payload))
            submitted += 1
            if submitted - written > in_flight:
                write_next()
        while written < submitted:
            write_next()
    finally:
        for _worker in workers:
            inbox.put(None)
    target.write(EOF_BLOCK)

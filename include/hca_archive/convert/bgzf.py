"""BGZF compression with libdeflate, run in a process of its own (see bam_pipes.BamWriter).

The converter writes uncompressed BAM into a pipe; this cuts it into blocks of htslib's size and
compresses them in threads. libdeflate gives zlib's ratio at level 6 in about a third of the
time. Its process is separate because its threads, sharing a GIL with the converter's busy main
thread, would wait for it at every 64 KB block.
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
# The 28-byte empty block that marks the end of a BGZF file (SAM/BAM specification 4.1.2).
EOF_BLOCK = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


def payloads(source: io.BufferedIOBase) -> Iterator[bytes]:
    """`source` in pieces of BLOCK_PAYLOAD bytes (the last one shorter)."""
    while payload := source.read(BLOCK_PAYLOAD):
        yield payload


def compress_block(payload: bytes, level: int) -> bytes:
    """One BGZF block holding `payload` (at most BLOCK_PAYLOAD bytes)."""
    data = deflate.deflate_compress(payload, level) if level > 0 else b""
    if not data or len(data) + HEADER.size + TRAILER.size > MAX_BLOCK:
        data = zlib.compress(payload, 0, wbits=-15)  # stored: always fits
    header = HEADER.pack(31, 139, 8, 4, 0, 0, 255, 6, 66, 67, 2, len(data) + 25)
    return header + data + TRAILER.pack(deflate.crc32(payload), len(payload))


def _compress_each(inbox: queue.SimpleQueue, outbox: queue.SimpleQueue, level: int) -> None:
    while (payload := inbox.get()) is not None:
        try:
            outbox.put(compress_block(payload, level))
        except Exception as error:  # handed to the writing thread
            outbox.put(error)


def compress(
    source: io.BufferedIOBase, target: io.BufferedIOBase, level: int, threads: int
) -> None:
    """Write what `source` holds to `target` as BGZF at `level`, with the EOF block.

    Block i goes to thread i % threads; taking the results in the same turn keeps their order.
    """
    inboxes = [queue.SimpleQueue() for _ in range(threads)]
    outboxes = [queue.SimpleQueue() for _ in range(threads)]
    workers = [
        threading.Thread(target=_compress_each, args=(inbox, outbox, level), daemon=True)
        for inbox, outbox in zip(inboxes, outboxes, strict=True)
    ]
    for worker in workers:
        worker.start()
    in_flight = 4 * threads  # bounds memory; keeps every thread busy
    submitted = written = 0

    def write_next() -> None:
        nonlocal written
        block = outboxes[written % threads].get()
        if isinstance(block, Exception):
            raise block
        target.write(block)
        written += 1

    try:
        for payload in payloads(source):
            inboxes[submitted % threads].put(payload)
            submitted += 1
            if submitted - written > in_flight:
                write_next()
        while written < submitted:
            write_next()
    finally:
        for inbox in inboxes:
            inbox.put(None)
    target.write(EOF_BLOCK)

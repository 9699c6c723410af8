"""BGZF compression with libdeflate, in a process of its own.

The converter writes uncompressed BAM into a pipe; this cuts it into blocks of htslib's size and
compresses them in threads. libdeflate gives zlib's ratio at level 6 in about a third of the
time. It runs as a separate process because its threads, sharing a GIL with the converter's busy
main thread, would wait for it at every 64 KB block. It imports nothing but the standard library
and deflate, so that it can run by its path (`python .../bgzf.py`) and start quickly.
"""

from __future__ import annotations

import argparse
import struct
import sys
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

import deflate

HEADER = struct.Struct("<4BI2BH2BHH")  # gzip header with BGZF's BC extra field
TRAILER = struct.Struct("<II")  # CRC32, uncompressed size
MAX_BLOCK = 1 << 16  # a whole BGZF block, header to trailer, is at most 64 KiB
BLOCK_PAYLOAD = 0xFF00  # uncompressed bytes per block, as htslib writes them
# The 28-byte empty block that marks the end of a BGZF file (SAM/BAM specification 4.1.2).
EOF_BLOCK = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


def payloads(source: BinaryIO) -> Iterator[bytes]:
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


def compress(source: BinaryIO, target: BinaryIO, level: int, threads: int) -> None:
    """Write what `source` holds to `target` as BGZF at `level`, with the EOF block."""
    in_flight = 4 * threads  # bounds memory; keeps every thread busy
    with ThreadPoolExecutor(threads) as pool:
        pending: deque = deque()
        for payload in payloads(source):
            pending.append(pool.submit(compress_block, payload, level))
            if len(pending) >= in_flight:
                target.write(pending.popleft().result())
        while pending:
            target.write(pending.popleft().result())
    target.write(EOF_BLOCK)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="data on stdin -> BGZF file")
    parser.add_argument("--level", type=int, required=True, choices=range(13))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("output")
    args = parser.parse_args(argv)
    try:
        with open(args.output, "wb") as target:
            compress(sys.stdin.buffer, target, args.level, max(args.threads, 1))
    except OSError as error:
        print(f"bgzf: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

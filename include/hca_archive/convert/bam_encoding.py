"""Unaligned BAM records in BAM's binary form, built in bulk (SAM/BAM specification, 4.2).

Writing the binary records here, rather than SAM text for samtools to parse, spares a process
that had to import pysam before the first record could move, and the parsing itself. Every
record is unmapped: refID and pos -1, MAPQ 0, bin 4680 (what htslib gives an unplaced read),
no CIGAR, FLAG 4, no mate, TLEN 0.
"""

from __future__ import annotations

import struct
from binascii import unhexlify
from functools import lru_cache
from operator import add

SEQ_BASES = b"=ACMGRSVTWYHKDBN"  # BAM's 4-bit base codes, in code order
NIBBLES = bytes.maketrans(SEQ_BASES, b"0123456789ABCDEF")
PHRED = bytes.maketrans(bytes(range(33, 127)), bytes(range(94)))  # FASTQ Phred+33 -> BAM
INT32 = struct.Struct("<i")
LENGTH_BYTES = [bytes((n,)) for n in range(256)]
# Cells between block_size and the read name: refID, pos | l_read_name | MAPQ, bin, n_cigar_op,
# FLAG | l_seq | next refID, next pos, TLEN.
UNPLACED = INT32.pack(-1) * 2
UNMAPPED_FLAGS = struct.pack("<BHHH", 0, 4680, 0, 4)
NO_MATE = INT32.pack(-1) * 2 + INT32.pack(0)


def header(text: bytes) -> bytes:
    """The BAM magic and header for SAM header `text`, with no reference sequences."""
    return b"BAM\x01" + INT32.pack(len(text)) + text + INT32.pack(0)


def z_tag(name: bytes, value: bytes) -> bytes:
    return name + b"Z" + value + b"\x00"


def hex_tag(name: bytes, value: bytes) -> bytes:
    return name + b"H" + value.hex().upper().encode() + b"\x00"


@lru_cache(maxsize=16)
def fixed_width(length: int, count: int) -> struct.Struct:
    """Cuts `count` concatenated values of `length` bytes apart in one call."""
    return struct.Struct(f"{length}s" * count)


def packed_bases(seqs: list[bytes], length: int | None, joined: bytes | None = None) -> list[bytes]:
    """Each sequence as BAM's SEQ: two 4-bit codes a byte. Bases must be in SEQ_BASES.
    `length`: that of every sequence, when they all have the same; `joined`: the sequences
    already joined, when the caller has them."""
    if length is not None:  # the usual case: a few calls for all
        # an odd length gets a 0 code after its last base, as BAM wants
        if length & 1:
            joined = b"0".join(seqs) + b"0"
        elif joined is None:
            joined = b"".join(seqs)
        packed = unhexlify(joined.translate(NIBBLES))
        return list(fixed_width((length + 1) // 2, len(seqs)).unpack(packed))
    codes = [seq.translate(NIBBLES) for seq in seqs]
    return [unhexlify(code + b"0" if len(code) & 1 else code) for code in codes]


def phred_scores(
    quals: list[bytes], length: int | None, joined: bytes | None = None
) -> list[bytes]:
    """FASTQ quality strings (Phred+33) as BAM's QUAL bytes (`joined`: as for packed_bases)."""
    if length is not None:
        scores = (b"".join(quals) if joined is None else joined).translate(PHRED)
        return list(fixed_width(length, len(quals)).unpack(scores))
    return [qual.translate(PHRED) for qual in quals]


def records(
    qnames: list[bytes],
    seqs: list[bytes],
    quals: list[bytes],
    tags: list,
    count: int,
    joined: tuple[bytes, bytes] | None = None,
) -> bytes:
    """`count` records; `tags` holds cells of binary tags: constants (bytes, the same in every
    record) or columns (one bytes value per record), laid out in that order. `joined`: the
    sequences and the qualities each joined, when the caller has them.

    An empty sequence is stored as SEQ and QUAL `*` (l_seq 0).
    """
    lengths = list(map(len, seqs))
    length = lengths[0] if lengths.count(lengths[0]) == count else None
    bases, qualities = (None, None) if joined is None else joined
    body = [
        UNPLACED,
        [LENGTH_BYTES[len(name) + 1] for name in qnames],
        UNMAPPED_FLAGS,
        list(map(INT32.pack, lengths)) if length is None else INT32.pack(length),
        NO_MATE,
        qnames,
        b"\x00",
        packed_bases(seqs, length, bases),
        phred_scores(quals, length, qualities),
        *tags,
    ]
    # block_size: the constant part, plus each column's lengths where they vary
    size = 0
    varying = []
    for cell in body:
        if isinstance(cell, bytes):
            size += len(cell)
            continue
        cell_lengths = list(map(len, cell))
        if cell_lengths.count(cell_lengths[0]) == count:
            size += cell_lengths[0]
        else:
            varying.append(cell_lengths)
    sizes = [size] * count
    for cell_lengths in varying:
        sizes = list(map(add, sizes, cell_lengths))
    return interleave([list(map(INT32.pack, sizes)), *body], count)


def interleave(row: list, count: int) -> bytes:
    """Join `count` rows whose cells come from columns (sequences of values) or constants."""
    width = len(row)
    cells: list[bytes] = [b""] * (count * width)
    for position, column in enumerate(row):
        cells[position::width] = [column] * count if isinstance(column, bytes) else column
    return b"".join(cells)

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
# The fast path's tables: bases ACGTN to the hex digits of their codes and any other byte to X;
# quality characters '!' to '~' to their scores and any other byte to 0xFF.
CHECKED_NIBBLES = bytes(NIBBLES[c] if c in b"ACGTN" else ord("X") for c in range(256))
CHECKED_PHRED = bytes(c - 33 if 33 <= c <= 126 else 0xFF for c in range(256))
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


def packed_bases(seqs: list[bytes]) -> list[bytes]:
    """Each sequence as BAM's SEQ: two 4-bit codes a byte. Bases must be in SEQ_BASES."""
    return [_pack_codes(seq.translate(NIBBLES)) for seq in seqs]


def phred_scores(quals: list[bytes]) -> list[bytes]:
    """FASTQ quality strings (Phred+33) as BAM's QUAL bytes."""
    return [qual.translate(PHRED) for qual in quals]


def _pack_codes(codes: bytes) -> bytes:
    return unhexlify(codes + b"0" if len(codes) & 1 else codes)  # odd: a 0 code after the last


def checked_seq_qual(
    seqs: list[bytes], quals: list[bytes], lengths: list[int], bases: bytes, qualities: bytes
) -> tuple[list[bytes], list[bytes]] | None:
    """SEQ and QUAL of reads whose bases are all ACGTN and whose quality characters are all
    '!' to '~'; None for any other. `lengths`: those of `seqs` (and `quals`); `bases` and
    `qualities`: `seqs` and `quals` joined. One translation of each both checks and converts,
    where a check and then a conversion read every byte twice."""
    codes, scores = bases.translate(CHECKED_NIBBLES), qualities.translate(CHECKED_PHRED)
    if b"X" in codes or b"\xff" in scores:
        return None
    count, length = len(lengths), lengths[0]
    if lengths.count(length) != count:  # lengths vary: rare, read by read
        return packed_bases(seqs), phred_scores(quals)
    cut = fixed_width(length, count)
    if length & 1:  # each sequence gets its 0 code before the next begins
        codes = b"0".join(cut.unpack(codes)) + b"0"
    packed = fixed_width((length + 1) // 2, count).unpack(unhexlify(codes))
    return list(packed), list(cut.unpack(scores))


def records(
    qnames: list[bytes],
    lengths: list[int],
    seq_column: list[bytes],
    qual_column: list[bytes],
    tags: list,
    count: int,
) -> bytes:
    """`count` records of reads `lengths` long, with SEQ and QUAL as BAM holds them (see
    packed_bases and phred_scores); `tags` holds cells of binary tags: constants (bytes, the
    same in every record) or columns (one bytes value per record), laid out in that order.

    An empty sequence is stored as SEQ and QUAL `*` (l_seq 0).
    """
    same_length = lengths.count(lengths[0]) == count
    body = [
        UNPLACED,
        [LENGTH_BYTES[len(name) + 1] for name in qnames],
        UNMAPPED_FLAGS,
        INT32.pack(lengths[0]) if same_length else list(map(INT32.pack, lengths)),
        NO_MATE,
        qnames,
        b"\x00",
        seq_column,
        qual_column,
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

"""The fast path's SEQ and QUAL: one translation that both checks and converts."""

from __future__ import annotations

import random

import pytest

from hca_archive.convert.bam_encoding import checked_seq_qual, packed_bases, phred_scores


def checked(seqs: list[bytes], quals: list[bytes]):
    return checked_seq_qual(seqs, quals, list(map(len, seqs)), b"".join(seqs), b"".join(quals))


@pytest.mark.parametrize("byte", range(256))
def test_only_acgtn_bases_and_printable_qualities_pass(byte):
    """Each byte value in the middle of a block: as a base it passes only if it is one of ACGTN,
    as a quality character only from '!' to '~' (space and '*' alone are SAM's own)."""
    seqs, quals = [b"ACGTN"] * 3, [b"IIIII"] * 3
    odd = bytes((byte,))
    base_seqs = [seqs[0], b"AC" + odd + b"TN", seqs[2]]
    assert (checked(base_seqs, quals) is not None) == (odd in b"ACGTN")
    qual_quals = [quals[0], b"II" + odd + b"II", quals[2]]
    assert (checked(seqs, qual_quals) is not None) == (33 <= byte <= 126)


@pytest.mark.parametrize("lengths", [[4] * 5, [5] * 5, [1] * 3, [3, 4, 5, 4, 1], [91] * 1000])
def test_the_columns_are_those_read_by_read(lengths):
    """Even, odd (a 0 code after the last base) and varying lengths give what the read-by-read
    conversion gives."""
    rng = random.Random(len(lengths) * 100 + lengths[0])
    seqs = [bytes(rng.choice(b"ACGTN") for _ in range(n)) for n in lengths]
    quals = [bytes(rng.randrange(33, 127) for _ in range(n)) for n in lengths]
    assert checked(seqs, quals) == (packed_bases(seqs), phred_scores(quals))


def test_packed_bases_pad_odd_lengths_with_a_zero_code():
    assert packed_bases([b"ACG", b"T"]) == [b"\x12\x40", b"\x80"]
    assert phred_scores([b"!I~"]) == [bytes([0, 40, 93])]

"""Small hand-made 10x FASTQ triplets for the converter tests."""

from __future__ import annotations

import gzip
import random
from dataclasses import dataclass, field
from pathlib import Path

BASES = "ACGTN"
QUALITIES = "#,:FIG?"


@dataclass
class Triplet:
    """FASTQ text of R1, R2 and (optionally) I1; tests edit the lines before writing."""

    reads: dict[str, list[list[str]]] = field(default_factory=dict)  # index -> records of 4 lines

    def text(self, index: str, eol: str = "\n") -> bytes:
        return "".join(line + eol for record in self.reads[index] for line in record).encode()

    def write(self, folder: Path, eol: str = "\n", gz: bool = True) -> dict[str, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        paths = {}
        for index in self.reads:
            label = {"read1": "R1", "read2": "R2", "index1": "I1"}[index]
            path = folder / (f"s_L001_{label}_001.fastq" + (".gz" if gz else ""))
            data = self.text(index, eol)
            path.write_bytes(gzip.compress(data, 6, mtime=0) if gz else data)
            paths[index] = path
        return paths


def make_triplet(
    reads: int,
    *,
    r1_length: int = 28,
    r2_length: int = 91,
    i1_length: int | None = 10,
    comments: bool = True,
    suffixes: bool = False,
    seed: int = 7,
) -> Triplet:
    """Casava-style reads: `@name 1:N:0:INDEX` (or `@name/1`), same names in every file."""
    rng = random.Random(seed)
    lengths = {"read1": r1_length, "read2": r2_length}
    if i1_length is not None:
        lengths["index1"] = i1_length
    read_number = {"read1": 1, "read2": 3, "index1": 2}
    triplet = Triplet({index: [] for index in lengths})
    for n in range(reads):
        name = f"A00123:8:HFLWKDSXY:2:1101:{rng.randrange(1000, 32000)}:{1000 + n}"
        for index, length in lengths.items():
            header = "@" + name
            if suffixes:
                header += f"/{read_number[index]}"
            if comments:
                header += f" {read_number[index]}:N:0:GATCGATC"
            seq = "".join(rng.choice(BASES) for _ in range(length))
            qual = "".join(rng.choice(QUALITIES) for _ in range(length))
            triplet.reads[index].append([header, seq, "+", qual])
    return triplet

"""The lossless record layout: how three FASTQ files become one unaligned BAM and back.

One unaligned record per read (FLAG 4, RNAME *, POS 0, MAPQ 0, CIGAR *, TLEN 0):

- QNAME: the read name shared by all files (header up to the first space or tab, minus a `/1`-style
  suffix); SEQ/QUAL: R2; CR/CY and UR/UY: R1's cell barcode and UMI (split per schema); BC/QT: I1.
- `@CO 10x_bam_to_fastq:...` lines tell 10x bamtofastq how to rebuild the reads.
- `@CO hca-archive-fastq:<json>` holds the encoding version and, per file, its original name and
  the defaults that most reads share: the header text after the name (`tail`, e.g. ` 1:N:0:GATC`),
  whether the `+` line repeats the header, and the line ending.

Per-read private tags (lower case, present only where a read differs from its file's default;
suffix 1 = R1, 2 = R2, i = I1):

- `t1`/`t2`/`ti` (Z): header text after the name; `p1`/`p2`/`pi` (Z): `+` line text after the `+`.
- `s1`/`q1` (Z): R1 bases and qualities after barcode+UMI. An R1 shorter than barcode+UMI is kept
  as it is: CR then UR hold what there is (possibly empty strings).
- `o1`/`o2`/`oi` (H): the read's original four lines for that file, used when the fields above
  cannot reproduce it exactly (a changed line ending, no line break at the end of the file,
  control characters, bases SEQ cannot hold). When present it wins over every other field.

Rebuilding a record: `@` QNAME tail, then SEQ (R2), CR+UR+s1 (R1) or BC (I1), then `+` and the
plus text, then QUAL, CY+UY+q1 or QT; each line ends with the file's line ending. An empty R2
read is SEQ/QUAL `*`. Refused with ConversionError rather than stored: differing read counts or
names, a record that is not FASTQ (header without `@`, no `+` line, bases and qualities of
different lengths, a cut-off last record), and a read name a BAM cannot hold (over 254
characters, empty, non-printable, or starting with `@`, which SAM text takes for a header line).
"""

from __future__ import annotations

import json
import re
import struct
from collections import namedtuple
from functools import lru_cache

from hca_archive.convert import bam_encoding
from hca_archive.convert.bam_encoding import SEQ_BASES, hex_tag, interleave, z_tag
from hca_archive.convert.errors import ConversionError
from hca_archive.convert.schema import Schema, get_schema

try:
    from hca_archive.convert import _encode_block
except ImportError as error:  # loudly, rather than convert more slowly without it
    raise ImportError(
        "hca_archive.convert._encode_block (C extension) is not built: run `make install`, "
        "or `pip install -e .` in the repository"
    ) from error

FORMAT_NAME = "hca-archive-fastq"
FORMAT_VERSION = 1
READ_INDEXES = ("read1", "read2", "index1")
LABELS = {"read1": "R1", "read2": "R2", "index1": "I1"}
TAG_SUFFIX = {"read1": "1", "read2": "2", "index1": "i"}
TENX_COMMENTS = {
    "read1": "10x_bam_to_fastq:R1(CR:CY,UR:UY)",
    "read2": "10x_bam_to_fastq:R2(SEQ:QUAL)",
    "index1": "10x_bam_to_fastq:I1(BC:QT)",
}
MAX_QNAME = 254
PRINTABLE = bytes(range(0x20, 0x7F))
PRINTABLE_LINES = PRINTABLE + b"\n"
PRINTABLE_TABS_LINES = PRINTABLE_LINES + b"\t"
_HEADER = re.compile(rb"@([^ \t]*?)(?:/[0-9])?(?=[ \t]|$)")


class FileLayout(
    namedtuple("FileLayout", "name tail plus_repeats_header eol", defaults=(b"", False, b"\n"))
):
    """Defaults shared by most reads of one FASTQ file."""

    __slots__ = ()
    name: str
    tail: bytes  # default b""
    plus_repeats_header: bool  # default False
    eol: bytes  # default b"\n"

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "tail": self.tail.decode("latin-1"),
            "plus_repeats_header": self.plus_repeats_header,
            "eol": self.eol.decode("latin-1"),
        }

    @classmethod
    def from_json(cls, data: dict) -> FileLayout:
        """From the header's JSON, which may come from anywhere: a ValueError names what is
        wrong. A tail with a line break or another line ending would add lines to every read."""
        name, tail, plus, eol = (
            data[key] for key in ("name", "tail", "plus_repeats_header", "eol")
        )
        if not all(isinstance(value, str) for value in (name, tail, eol)):
            raise ValueError("name, tail and eol must be strings")
        if not isinstance(plus, bool):
            raise ValueError("plus_repeats_header must be true or false")
        if "\n" in tail or eol not in ("\n", "\r\n"):
            raise ValueError(f"tail {tail!r} or eol {eol!r} would break the FASTQ lines")
        return cls(name, tail.encode("latin-1"), plus, eol.encode("latin-1"))

    def render(self, qname: bytes, tail: bytes, seq: bytes, plus: bytes, qual: bytes) -> bytes:
        eol = self.eol
        return b"".join((b"@", qname, tail, eol, seq, eol, b"+", plus, eol, qual, eol))

    def default_plus(self, qname: bytes, tail: bytes) -> bytes:
        return qname + tail if self.plus_repeats_header else b""


class Layout(namedtuple("Layout", "schema files")):
    __slots__ = ()
    schema: Schema
    files: dict[str, FileLayout]  # by read index, in READ_INDEXES order

    def header_lines(self, program_version: str) -> list[str]:
        description = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "schema": self.schema.name,
            "files": {index: f.to_json() for index, f in self.files.items()},
        }
        return [
            "@HD\tVN:1.6\tSO:unsorted\tGO:query",
            *(f"@CO\t{TENX_COMMENTS[index]}" for index in self.files),
            f"@CO\t{FORMAT_NAME}:{json.dumps(description, separators=(',', ':'))}",
            f"@PG\tID:hca-archive\tPN:hca-archive\tVN:{program_version}",
        ]

    @classmethod
    def from_comments(cls, comments: list[str]) -> Layout:
        prefix = FORMAT_NAME + ":"
        for comment in comments:
            if comment.startswith(prefix):
                try:
                    data = json.loads(comment[len(prefix) :])
                except ValueError as error:
                    raise ValueError(f"'@CO {prefix}' header line is not JSON: {error}") from None
                if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
                    version = data.get("version") if isinstance(data, dict) else None
                    raise ValueError(f"unsupported {FORMAT_NAME} version {version}")
                try:
                    files = {}
                    for i in (i for i in READ_INDEXES if i in data["files"]):
                        try:
                            files[i] = FileLayout.from_json(data["files"][i])
                        except ValueError as error:
                            raise ValueError(f"files.{i}: {error}") from None
                    if "read1" not in files or "read2" not in files:  # convert needs both
                        raise ValueError(f"files {sorted(files)}: read1 or read2 missing")
                    return cls(get_schema(data["schema"]), files)
                except (KeyError, TypeError, AttributeError, ConversionError) as error:
                    raise ValueError(f"malformed '@CO {prefix}' header line: {error!r}") from None
                except ValueError as error:
                    raise ValueError(f"malformed '@CO {prefix}' header line: {error}") from None
        raise ValueError(f"no '@CO {prefix}' header line: not written by hca-archive convert")


def split_header(header: bytes) -> tuple[bytes, bytes] | None:
    """`@name/1 comment` -> (b'name', b'/1 comment'); None unless it is a FASTQ header."""
    match = _HEADER.match(header)
    if match is None:
        return None
    return match.group(1), header[match.end(1) :]


def infer_file_layout(name: str, lines: list[bytes]) -> FileLayout:
    """Defaults of a file from its first record (any later read may differ)."""
    if len(lines) < 4:
        return FileLayout(name)
    eol = b"\r\n" if lines[0].endswith(b"\r") else b"\n"
    header, plus = (line.removesuffix(b"\r") for line in (lines[0], lines[2]))
    parts = split_header(header)
    tail = parts[1] if parts else b""
    return FileLayout(name, tail, len(plus) > 1 and plus[1:] == header[1:], eol)


def _z_safe(value: bytes) -> bool:
    return not value.translate(None, PRINTABLE)


def _seq_safe(seq: bytes, qual: bytes) -> bool:
    return (
        bool(seq)
        and not seq.translate(None, SEQ_BASES)
        and not qual.translate(None, PRINTABLE[1:])
        and qual != b"*"
    )


class BlockEncoder:
    """Turns blocks of FASTQ lines (same reads in every file) into binary BAM records."""

    def __init__(self, layout: Layout, streams: dict, *, compiled: bool = True):
        self.layout = layout
        self.streams = streams  # read index -> FastqStream, for error messages
        self.short_r1_reads = 0
        # The C encoder's arguments after the lines, when it can serve this layout: every file
        # ends lines with "\n" and has bare '+' lines (`compiled=False`: Python only, for tests).
        self._compiled_args: tuple | None = None
        files = layout.files
        if (
            compiled
            and list(files) in (["read1", "read2"], ["read1", "read2", "index1"])
            and all(f.eol == b"\n" and not f.plus_repeats_header for f in files.values())
        ):
            i1_tail = files["index1"].tail if "index1" in files else b""
            schema = layout.schema
            self._compiled_args = (
                files["read1"].tail,
                files["read2"].tail,
                i1_tail,
                schema.barcode_length,
                schema.barcode_umi_length,
            )

    def encode(
        self,
        lines: dict[str, list[bytes]],
        first_read: int,
        last_without_newline: set[str],
    ) -> bytes:
        """BAM records for one block; `first_read` numbers its first read from 1.

        The C encoder takes the common case; what it declines goes to the Python fast path,
        and what that declines to the read-by-read slow path, which also names errors."""
        if not last_without_newline:
            if self._compiled_args is not None:
                i1 = lines["index1"] if "index1" in self.layout.files else None
                encoded = _encode_block.encode(
                    lines["read1"], lines["read2"], i1, *self._compiled_args
                )
                if encoded is not None:
                    return encoded
            fast = self._encode_fast(lines)
            if fast is not None:
                return fast
        return self._encode_slow(lines, first_read, last_without_newline)

    # The fast path handles blocks in which every record is well formed and follows its file's
    # defaults (per-read comments may vary). It uses only bulk operations on whole columns.
    def _encode_fast(self, lines: dict[str, list[bytes]]) -> bytes | None:
        files = self.layout.files
        k = len(lines["read2"]) // 4
        # by read index: bases and qualities, each as a list of lines and joined
        columns: dict[str, tuple[list[bytes], list[bytes], bytes, bytes]] = {}
        qnames: list[bytes] | None = None
        extras: list[list[bytes]] = []
        for index, file in files.items():
            block = lines[index]
            if file.eol == b"\r\n":
                ends = [line[-1:] for line in block]
                if ends.count(b"\r") != len(block):
                    return None
                block = [line[:-1] for line in block]
            headers, seqs, pluses, quals = block[0::4], block[1::4], block[2::4], block[3::4]
            # Each header holds one line break, so one split yields the read names and, when it
            # makes k names, proves that every header starts with '@' and ends with the tail.
            joined = b"\n".join(headers)
            # Tabs only where the file's default header tail has them: none at all, usually.
            tabs = file.tail.count(b"\t")
            if joined.translate(None, PRINTABLE_TABS_LINES if tabs else PRINTABLE_LINES):
                return None
            if tabs and joined.count(b"\t") != k * tabs:
                return None
            bases, qualities = b"".join(seqs), b"".join(quals)
            # R2's are checked as they are converted, more strictly (checked_seq_qual)
            if index != "read2" and (
                bases.translate(None, PRINTABLE) or qualities.translate(None, PRINTABLE)
            ):
                return None
            lengths = list(map(len, seqs))
            if lengths != list(map(len, quals)):
                return None
            if file.plus_repeats_header:
                if pluses != [b"+" + header[1:] for header in headers]:
                    return None
            elif pluses.count(b"+") != k:
                return None
            names = joined.split(file.tail + b"\n@")
            starts_right = joined[:1] == b"@"
            whole = len(names) == k and starts_right and names[0] != b""
            if whole:
                names[0] = names[0][1:]  # first: the tail must not overlap this '@'
                whole = names[-1].endswith(file.tail)
            if whole:
                names[-1] = names[-1][: len(names[-1]) - len(file.tail)]
                if joined.count(b" ") != k * file.tail.count(b" "):  # spaces in names
                    return None
            else:  # per-read tails after a space go into t1/t2/ti
                if not (starts_right and joined.count(b"\n@") == k - 1):
                    return None
                # with a tab in the default tail, the tab count no longer proves where tabs are
                if not file.tail.startswith(b" ") or b"\t" in file.tail:
                    return None
                parted = [header.partition(b" ") for header in headers]
                names = [p[0][1:] for p in parted]
                name = f"t{TAG_SUFFIX[index]}".encode()
                tails = [p[1] + p[2] for p in parted]
                extras.append([b"" if t == file.tail else z_tag(name, t) for t in tails])
            if qnames is None:
                qnames = names
                # empty, or starting with '@': the slow path refuses it (see _encode_read)
                if b"" in names or joined.startswith(b"@@") or b"\n@@" in joined:
                    return None
            elif names != qnames:
                return None
            columns[index] = (seqs, quals, lengths, bases, qualities)
        if max(map(len, qnames)) > MAX_QNAME:
            return None
        seqs2, quals2, lengths2, bases2, qualities2 = columns["read2"]
        if b"*" in quals2 or 0 in lengths2:
            return None
        seq_qual = bam_encoding.checked_seq_qual(seqs2, quals2, lengths2, bases2, qualities2)
        if seq_qual is None:
            return None
        seqs1, quals1, r1_lengths, bases1, qualities1 = columns["read1"]
        schema = self.layout.schema
        bc, bu = schema.barcode_length, schema.barcode_umi_length
        if min(r1_lengths) < bu:
            return None
        rest = None
        if r1_lengths.count(r1_lengths[0]) == k:  # the usual case: cut all R1 in one call
            cut = _r1_splitter(schema, r1_lengths[0], k)
            seq_parts, qual_parts = cut.unpack(bases1), cut.unpack(qualities1)
            step = 3 if r1_lengths[0] > bu else 2
            cr, ur = seq_parts[0::step], seq_parts[1::step]
            cy, uy = qual_parts[0::step], qual_parts[1::step]
            if step == 3:
                rest = (seq_parts[2::3], qual_parts[2::3])
        else:
            cr, ur = [s[:bc] for s in seqs1], [s[bc:bu] for s in seqs1]
            cy, uy = [q[:bc] for q in quals1], [q[bc:bu] for q in quals1]
            extras.append(
                [
                    z_tag(b"s1", s[bu:]) + z_tag(b"q1", q[bu:]) if len(s) > bu else b""
                    for s, q in zip(seqs1, quals1, strict=True)
                ]
            )
        # Bases next to bases and qualities next to qualities compress a little better.
        tags = [b"CRZ", cr, b"\x00URZ", ur, b"\x00CYZ", cy, b"\x00UYZ", uy, b"\x00"]
        if rest is not None:
            tags += [b"s1Z", rest[0], b"\x00q1Z", rest[1], b"\x00"]
        if "index1" in columns:
            seqs_i, quals_i, *_joined = columns["index1"]
            tags += [b"BCZ", seqs_i, b"\x00QTZ", quals_i, b"\x00"]
        if len(extras) == 1:
            tags.append(extras[0])
        elif extras:
            tags.append([b"".join(parts) for parts in zip(*extras, strict=True)])
        return bam_encoding.records(qnames, lengths2, *seq_qual, tags, k)

    def _encode_slow(
        self, lines: dict[str, list[bytes]], first_read: int, last_without_newline: set[str]
    ) -> bytes:
        k = len(lines["read2"]) // 4
        reads = []
        for i in range(k):
            records = {}
            for index, block in lines.items():
                four = block[4 * i : 4 * i + 4]
                no_final_newline = index in last_without_newline and i == k - 1
                records[index] = (four, no_final_newline)
            reads.append(self._encode_read(records, first_read + i))
        qnames, seqs, quals, tags = map(list, zip(*reads, strict=True))
        seq_column, qual_column = bam_encoding.packed_bases(seqs), bam_encoding.phred_scores(quals)
        return bam_encoding.records(
            qnames, list(map(len, seqs)), seq_column, qual_column, [tags], k
        )

    def _encode_read(self, records: dict, read_number: int) -> tuple[bytes, bytes, bytes, bytes]:
        """(read name, SEQ, QUAL as in FASTQ, binary tags) of one read."""
        parsed = {}
        for index, (four, no_final_newline) in records.items():
            parsed[index] = self._parse_record(index, four, no_final_newline, read_number)
        qname = parsed["read2"][0]
        for index, (name, *_rest) in parsed.items():
            if name != qname:
                where = self.streams[index].describe(read_number)
                raise ConversionError(
                    f"{where}: read name {name.decode('latin-1')!r} does not match "
                    f"{qname.decode('latin-1')!r} in {LABELS['read2']}"
                )
        # SAM's QNAME is [!-?A-~]{1,254}: a record whose name starts with '@' becomes, in SAM
        # text, a line that samtools takes for a header line and refuses.
        if (
            len(qname) > MAX_QNAME
            or not qname
            or qname.startswith(b"@")
            or qname.translate(None, PRINTABLE[1:])
        ):
            where = self.streams["read2"].describe(read_number)
            raise ConversionError(
                f"{where}: read name {qname.decode('latin-1')!r} cannot be a BAM read name "
                f"(1 to {MAX_QNAME} printable characters without spaces, not starting with '@')"
            )
        tags: list[bytes] = []
        _name, tail, seq, plus, qual, raw = parsed["read2"]
        stored = (seq, qual) if _seq_safe(seq, qual) or (not seq and not qual) else None
        self._add_file_tags(tags, "read2", qname, tail, seq, plus, qual, raw, whole=stored is None)
        r1 = parsed["read1"]
        self._add_r1_tags(tags, qname, *r1[1:], read_number)
        if "index1" in parsed:
            _name, tail, seq, plus, qual, raw = parsed["index1"]
            if storable := _z_safe(seq + qual):
                tags += [z_tag(b"BC", seq), z_tag(b"QT", qual)]
            self._add_file_tags(
                tags, "index1", qname, tail, seq, plus, qual, raw, whole=not storable
            )
        return qname, *(stored or (b"", b"")), b"".join(tags)  # SEQ and QUAL '*' if not stored

    def _add_r1_tags(self, tags, qname, tail, seq, plus, qual, raw, read_number) -> None:
        schema = self.layout.schema
        if len(seq) < schema.barcode_umi_length:
            self.short_r1_reads += 1
        if storable := _z_safe(seq + qual):
            bc, bu = schema.barcode_length, schema.barcode_umi_length
            tags += [z_tag(b"CR", seq[:bc]), z_tag(b"UR", seq[bc:bu])]
            tags += [z_tag(b"CY", qual[:bc]), z_tag(b"UY", qual[bc:bu])]
            if len(seq) > bu:
                tags += [z_tag(b"s1", seq[bu:]), z_tag(b"q1", qual[bu:])]
        self._add_file_tags(tags, "read1", qname, tail, seq, plus, qual, raw, whole=not storable)

    def _add_file_tags(self, tags, index, qname, tail, seq, plus, qual, raw, whole) -> None:
        """Tags for what the file's defaults miss; the original record if even that falls short
        or the bases and qualities could not be stored (`whole`)."""
        file = self.layout.files[index]
        suffix = TAG_SUFFIX[index].encode()
        extra = {}
        if tail != file.tail:
            extra[b"t" + suffix] = tail
        if plus != file.default_plus(qname, tail):
            extra[b"p" + suffix] = plus
        exact = not whole and file.render(qname, tail, seq, plus, qual) == raw
        if exact and all(map(_z_safe, extra.values())):
            tags += [z_tag(name, value) for name, value in extra.items()]
        else:
            tags.append(hex_tag(b"o" + suffix, raw))

    def _parse_record(self, index, four, no_final_newline, read_number):
        """(name, tail, seq, plus, qual, original text) of one record, or a ConversionError."""
        where = self.streams[index].describe(read_number)
        raw = b"\n".join(four) + (b"" if no_final_newline else b"\n")
        header, seq, plus, qual = (line.removesuffix(b"\r") for line in four)
        parts = split_header(header) if header.startswith(b"@") else None
        if parts is None or not parts[0]:
            shown = header[:60].decode("latin-1")
            raise ConversionError(f"{where}: not a FASTQ header line: {shown!r}")
        if not plus.startswith(b"+"):
            raise ConversionError(f"{where}: third line does not start with '+': not FASTQ")
        if len(seq) != len(qual):
            raise ConversionError(
                f"{where}: {len(seq)} bases but {len(qual)} quality values: not FASTQ"
            )
        return parts[0], parts[1], seq, plus[1:], qual, raw


@lru_cache(maxsize=8)
def _r1_splitter(schema: Schema, r1_length: int, reads: int) -> struct.Struct:
    """Cuts `reads` concatenated R1 lines into barcode, UMI (and the rest) in one call."""
    rest = r1_length - schema.barcode_umi_length
    one = f"{schema.barcode_length}s{schema.umi_length}s" + (f"{rest}s" if rest else "")
    return struct.Struct(one * reads)


FAST_DECODE_TAGS = {b"CR:Z:", b"CY:Z:", b"UR:Z:", b"UY:Z:", b"s1:Z:", b"q1:Z:", b"BC:Z:", b"QT:Z:"}
TAIL_TAGS = {f"t{suffix}".encode(): index for index, suffix in TAG_SUFFIX.items()}
PER_READ_TAGS = {name + b":Z:" for name in (*TAIL_TAGS, b"s1", b"q1")}
READ_TAGS = {
    "read1": (b"CR", b"UR", b"s1", b"CY", b"UY", b"q1"),
    "read2": (),
    "index1": (b"BC", b"QT"),
}
# Tags every record has for a file unless its original text (o1/o2/oi) stands for it.
REQUIRED_TAGS = {"read1": ("CR", "UR", "CY", "UY"), "read2": (), "index1": ("BC", "QT")}
ORIGINAL_TAGS = {f"o{suffix}" for suffix in TAG_SUFFIX.values()}
# The type each tag the decoder reads must have (SAM text: `XX:T:value`); others are ignored.
TEXT_TAGS = ("CR", "UR", "CY", "UY", "s1", "q1", "BC", "QT", "t1", "t2", "ti", "p1", "p2", "pi")
TAG_TYPES = {**dict.fromkeys(TEXT_TAGS, b"Z"), **dict.fromkeys(ORIGINAL_TAGS, b"H")}


def decode_block(
    layout: Layout,
    sam_lines: list[bytes],
    first_record: int = 1,
    unended: set[str] | None = None,
) -> dict[str, bytes]:
    """FASTQ text per read index of a block of SAM lines (the inverse of BlockEncoder).

    The BAM may come from anywhere: a record this layout cannot have written (a tag missing or
    of another type, bases and qualities of different lengths, an original text that is not
    one FASTQ record of that read) is a ValueError naming it, numbered from `first_record`,
    rather than a FASTQ record that is silently wrong, missing or doubled. `unended`, kept by
    the caller across blocks, holds the files whose last record had no final line break: only
    the last record of a file can lack it."""
    unended = set() if unended is None else unended
    fast = None if unended and sam_lines else _decode_fast(layout, sam_lines)
    if fast is not None:
        return fast
    texts: dict[str, list[bytes]] = {index: [] for index in layout.files}
    for number, line in enumerate(sam_lines, start=first_record):
        fields = line.split(b"\t")
        try:
            if unended:
                shown = ", ".join(LABELS[index] for index in sorted(unended))
                raise ValueError(f"follows a record without a final line break in {shown}")
            if len(fields) < 11:
                raise ValueError(f"{len(fields)} fields, not a SAM record")
            seq = b"" if fields[9] == b"*" else fields[9]
            qual = b"" if fields[10] == b"*" else fields[10]
            decoded = decode_record(layout, fields[0], seq, qual, _sam_tags(fields[11:]))
        except ValueError as error:
            name = fields[0][:80].decode("latin-1")
            raise ValueError(f"record {number} (read {name!r}): {error}") from None
        for index, text in decoded.items():
            texts[index].append(text)
            if text.count(b"\n") < 4:  # only an original text (o tag) can lack one
                unended.add(index)
    return {index: b"".join(parts) for index, parts in texts.items()}


def _sam_tags(fields: list[bytes]) -> dict[str, bytes]:
    """The values of a record's SAM text tags, by name; ValueError for a malformed tag, a tag
    given twice, or a tag the decoder reads that is not of its type."""
    tags = {}
    for field in fields:
        if field[2:3] != b":" or field[4:5] != b":":
            raise ValueError(f"malformed tag {field[:20].decode('latin-1')!r}")
        name = field[:2].decode("latin-1")
        expected = TAG_TYPES.get(name)
        if expected is not None and field[3:4] != expected:
            raise ValueError(
                f"tag {name} is of type {field[3:4].decode('latin-1')}, not {expected.decode()}"
            )
        if name in tags:
            raise ValueError(f"tag {name} twice")
        tags[name] = field[5:]
    return tags


def _original_text(index: str, qname: bytes, value: bytes) -> bytes:
    """The record an `o` tag holds, once it is shown to be one FASTQ record of this read (as
    the encoder read it): a hostile one could drop a read from one file or add reads to it."""
    try:
        text = bytes.fromhex(value.decode("ascii"))
    except ValueError:
        raise ValueError(f"o{TAG_SUFFIX[index]} is not hexadecimal text") from None
    # four lines, each ended by a line break but (at the end of the file) the last
    breaks = text.count(b"\n")
    lines = (text[:-1] if breaks == 4 and text.endswith(b"\n") else text).split(b"\n")
    header, seq, plus, qual = (
        (line.removesuffix(b"\r") for line in lines) if len(lines) == 4 else (b"",) * 4
    )
    parts = split_header(header) if header.startswith(b"@") else None
    if parts is None or parts[0] != qname or not plus.startswith(b"+") or len(seq) != len(qual):
        raise ValueError(
            f"o{TAG_SUFFIX[index]} is not one FASTQ record of this read: "
            f"{text[:80].decode('latin-1')!r}"
        )
    return text


def _decode_fast(layout: Layout, sam_lines: list[bytes]) -> dict[str, bytes] | None:
    """Bulk decoding of blocks whose records carry the same standard tags, in the same order,
    and after them at most per-read header tails (t1/t2/ti) and R1 rests (s1/q1), as the
    encoder's fast path writes them."""
    k = len(sam_lines)
    if not k:
        return dict.fromkeys(layout.files, b"")
    first = sam_lines[0].split(b"\t")
    prefixes = []
    for field in first[11:]:
        if field[:5] not in FAST_DECODE_TAGS or field[:5] in prefixes:
            break
        prefixes.append(field[:5])
    required = {name.encode() + b":Z:" for i in layout.files for name in REQUIRED_TAGS[i]}
    if not required.issubset(prefixes):
        return None
    width = 11 + len(prefixes)
    per_read: dict[bytes, list[bytes | None]] = {}  # tags that only some reads carry
    counts = list(map(bytes.count, sam_lines, [b"\t"] * k))
    if counts.count(width - 1) != k:
        sam_lines = list(sam_lines)
        for i, count in enumerate(counts):
            if count < width - 1:
                return None
            if count > width - 1:
                *_standard, extra = sam_lines[i].split(b"\t", width)
                sam_lines[i] = sam_lines[i][: -len(extra) - 1]
                for tag in extra.split(b"\t"):
                    values = per_read.setdefault(tag[:2], [None] * k)
                    if tag[:5] not in PER_READ_TAGS or values[i] is not None:
                        return None  # the slow path names the tag (or the same one twice)
                    values[i] = tag[5:]
    fields = b"\t".join(sam_lines).split(b"\t")
    qnames, seqs, quals = fields[0::width], fields[9::width], fields[10::width]
    if b"*" in seqs or b"*" in quals:  # '*' qualities: lengths differ (the slow path says so)
        return None
    tags = {}
    for offset, prefix in enumerate(prefixes, start=11):
        joined = b"\t".join(fields[offset::width])
        separator = b"\t" + prefix
        if not joined.startswith(prefix) or joined.count(separator) != k - 1:
            return None
        tags[prefix[:2]] = joined[5:].split(separator)
    for name, values in per_read.items():
        if name in tags:
            return None
        if name in TAIL_TAGS and TAIL_TAGS[name] not in layout.files:
            return None
        default = layout.files[TAIL_TAGS[name]].tail if name in TAIL_TAGS else b""
        tags[name] = [default if value is None else value for value in values]
    empty = [b""] * k
    for bases, qualities in ((b"CR", b"CY"), (b"UR", b"UY"), (b"s1", b"q1"), (b"BC", b"QT")):
        if bases in tags or qualities in tags:
            bases_lengths = list(map(len, tags.get(bases, empty)))
            if bases_lengths != list(map(len, tags.get(qualities, empty))):
                return None
    texts = {}
    for index, file in layout.files.items():
        column = {name: tags.get(name, [b""] * k) for name in READ_TAGS[index]}
        if index == "read2":
            seq_parts, qual_parts = [seqs], [quals]
        elif index == "read1":
            seq_parts = [column[b"CR"], column[b"UR"], column[b"s1"]]
            qual_parts = [column[b"CY"], column[b"UY"], column[b"q1"]]
        else:
            seq_parts, qual_parts = [column[b"BC"]], [column[b"QT"]]
        tail = tags.get(b"t" + TAG_SUFFIX[index].encode(), file.tail)
        row = [b"@", qnames, tail, file.eol, *seq_parts, file.eol + b"+"]
        if file.plus_repeats_header:
            row += [qnames, tail]
        row += [file.eol, *qual_parts, file.eol]
        texts[index] = interleave(row, k)
    return texts


def decode_record(layout: Layout, qname: bytes, seq: bytes, qual: bytes, tags: dict) -> dict:
    """FASTQ text of one BAM record, per read index."""
    texts = {}
    for index, file in layout.files.items():
        suffix = TAG_SUFFIX[index]
        original = tags.get("o" + suffix)
        if original is not None:
            texts[index] = _original_text(index, qname, original)
            continue
        missing = [name for name in REQUIRED_TAGS[index] if name not in tags]
        if missing:
            raise ValueError(f"{LABELS[index]} has neither o{suffix} nor {', '.join(missing)}")
        if index == "read2":
            read_seq, read_qual = seq, qual
        elif index == "read1":
            get = tags.get
            read_seq = get("CR", b"") + get("UR", b"") + get("s1", b"")
            read_qual = get("CY", b"") + get("UY", b"") + get("q1", b"")
        else:
            read_seq, read_qual = tags.get("BC", b""), tags.get("QT", b"")
        if len(read_seq) != len(read_qual):
            raise ValueError(
                f"{LABELS[index]} has {len(read_seq)} bases but {len(read_qual)} qualities"
            )
        tail = tags.get("t" + suffix, file.tail)
        plus = tags.get("p" + suffix)
        if plus is None:
            plus = file.default_plus(qname, tail)
        texts[index] = file.render(qname, tail, read_seq, plus, read_qual)
    return texts

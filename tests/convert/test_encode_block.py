"""The C block encoder (_encode_block): the Python paths' bytes or nothing, whatever it is given."""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import sysconfig

import pytest

from hca_archive.convert import _encode_block
from hca_archive.convert.errors import ConversionError
from hca_archive.convert.layout import BlockEncoder, FileLayout, Layout
from hca_archive.convert.schema import SCHEMAS, Schema
from tests.fixtures.paths import REPO_ROOT

SOURCE = REPO_ROOT / "include" / "hca_archive" / "convert" / "_encode_block.c"
TAILS = [b" 1:N:0:GATCGATC", b"", b"/1 1:N:0:GATC", b"/1", b" x", b" ", b"  two  spaces"]
NAME_BYTES = bytes(range(0x21, 0x7F))  # printable, no space
QUALITY_BYTES = bytes(range(ord("!"), ord("~") + 1))
ODD_BYTES = [0x00, 0x01, 0x09, 0x0D, 0x1F, 0x7F, 0x80, 0xFF, *b" @*+acgtnX=.!~"]


class _Stream:
    """What BlockEncoder asks of a FastqStream: where a read is, for error messages."""

    def describe(self, read_number: int) -> str:
        return f"read {read_number}"


def _python(layout: Layout, lines: dict) -> tuple[bytes | None, bytes | None]:
    """(what the Python paths make of the block or None if they refuse it, the fast path's)."""
    encoder = BlockEncoder(layout, dict.fromkeys(layout.files, _Stream()), compiled=False)
    # ValueError, IndexError: from blocks no converter hands over (files of unlike size)
    try:
        whole = encoder.encode(lines, 1, set())
    except (ConversionError, ValueError, IndexError):
        whole = None
    try:
        fast = encoder._encode_fast(lines)
    except (ValueError, IndexError):
        fast = None
    return whole, fast


def _compiled(layout: Layout, lines: dict) -> bytes | None:
    files = layout.files
    return _encode_block.encode(
        lines["read1"],
        lines["read2"],
        lines.get("index1"),
        files["read1"].tail,
        files["read2"].tail,
        files["index1"].tail if "index1" in files else b"",
        layout.schema.barcode_length,
        layout.schema.barcode_umi_length,
    )


def _valid_block(rng: random.Random) -> tuple[Layout, dict[str, list[bytes]], list[bytes]]:
    """A block the C encoder must accept (and its read names): random names, lengths, header
    tails (default and per read)."""
    schema = rng.choice(list(SCHEMAS.values()))
    indexes = ["read1", "read2", "index1"] if rng.random() < 0.7 else ["read1", "read2"]
    tails = {index: rng.choice(TAILS) for index in indexes}
    k = rng.choice([1, 2, 3, 7, 20, 50])
    r1_length = schema.barcode_umi_length + rng.choice([0, 0, 1, 2, 63])
    r2_fixed = rng.choice([None, 1, 2, 90, 91])
    lines: dict[str, list[bytes]] = {index: [] for index in indexes}
    names = []
    for _ in range(k):
        name_length = rng.choice([1, 2, 10, 30, 254])
        name = bytes(rng.choice(NAME_BYTES) for _ in range(name_length))
        if name.startswith(b"@"):
            name = b"A" + name[1:]
        names.append(name)
        for index in indexes:
            tail = tails[index]
            if tail.startswith(b" ") and rng.random() < 0.2:  # a comment of its own
                tail = rng.choice([b"", b" 1:Y:0:GATC", b" ", b" a b"])
            if index == "read2":
                length = r2_fixed or rng.randrange(1, 120)
                seq = bytes(rng.choice(b"ACGTN") for _ in range(length))
                qual = bytes(rng.choice(QUALITY_BYTES) for _ in range(length))
                if qual == b"*":
                    qual = b"F"
            else:
                length = r1_length if index == "read1" else rng.choice([0, 8, 10, 12])
                seq = bytes(rng.choice(b"ACGTNacgt. ~!") for _ in range(length))
                qual = bytes(rng.choice(QUALITY_BYTES + b" ") for _ in range(length))
            lines[index] += [b"@" + name + tail, seq, b"+", qual]
    layout = Layout(schema, {index: FileLayout(index, tails[index]) for index in indexes})
    return layout, lines, names


def _set_line(lines: dict, rng: random.Random, edit) -> None:
    index = rng.choice(list(lines))
    block = lines[index]
    where = rng.randrange(len(block))
    block[where] = edit(block[where], where % 4, index)


def _flip(line: bytes, rng: random.Random) -> bytes:
    odd = bytes([rng.choice(ODD_BYTES)])
    if not line:
        return odd
    at = rng.randrange(len(line))
    return line[:at] + odd + line[at + 1 :]


def _rename_read(lines: dict, names: list[bytes], rng: random.Random) -> None:
    """One read's name, or the header text after it, changed alike in every file (a change in
    one file alone is declined for the names that then differ)."""
    read = rng.randrange(len(names))
    new_name = rng.choice(
        [None, b"@x", b"a b", b"a\tb", b"", b"N" * 254, b"N" * 255, b"x/1", b"x\r", b"\xe9"]
    )
    new_tail = rng.choice([None, b" other", b"", b"\tother", b"/2", b"/1 1:N:0:GATC", b"  "])
    for block in lines.values():
        if 4 * read < len(block) and block[4 * read].startswith(b"@" + names[read]):
            tail = block[4 * read][1 + len(names[read]) :]
            name = names[read] if new_name is None else new_name
            block[4 * read] = b"@" + name + (tail if new_tail is None else new_tail)


MUTATIONS = [
    lambda lines, rng: _set_line(lines, rng, lambda line, _kind, _index: _flip(line, rng)),
    lambda lines, rng: _set_line(lines, rng, lambda line, _kind, _index: line + b"\r"),
    lambda lines, rng: _set_line(lines, rng, lambda line, _kind, _index: line[:-1]),
    lambda lines, rng: _set_line(lines, rng, lambda line, _kind, _index: line + b"A"),
    lambda lines, rng: _set_line(lines, rng, lambda line, _kind, _index: b""),
    lambda lines, rng: _set_line(lines, rng, lambda line, _kind, _index: line.replace(b" ", b"\t")),
    # on a header: a name starting with '@', a long name, a space or tab in the name, no '@'
    lambda lines, rng: _set_line(lines, rng, lambda line, kind, _index: b"@" + line),
    lambda lines, rng: _set_line(
        lines, rng, lambda line, kind, _index: line[:1] + b"N" * rng.choice([254, 255, 300]) + line
    ),
    lambda lines, rng: _set_line(
        lines, rng, lambda line, kind, _index: line[:2] + rng.choice([b" ", b"\t"]) + line[2:]
    ),
    lambda lines, rng: _set_line(lines, rng, lambda line, kind, _index: line[1:]),
    # on a '+' line: text after it, or the header repeated
    lambda lines, rng: _set_line(lines, rng, lambda line, kind, _index: line + b"x"),
    # R2 reads SAM cannot store as they are: empty, quality '*', lower case
    lambda lines, rng: lines["read2"].__setitem__(slice(1, 4), [b"A", b"+", b"*"]),
    lambda lines, rng: lines["read2"].__setitem__(slice(1, 4), [b"", b"+", b""]),
    lambda lines, rng: lines["read2"].__setitem__(1, lines["read2"][1].lower()),
    # R1 of another length, or shorter than barcode+UMI
    lambda lines, rng: lines["read1"].__setitem__(
        slice(1, 4), [lines["read1"][1] + b"AC", b"+", lines["read1"][3] + b"FF"]
    ),
    lambda lines, rng: lines["read1"].__setitem__(
        slice(-3, None), [lines["read1"][-3][:20], b"+", lines["read1"][-1][:20]]
    ),
    # another name in one file; one header's default tail changed; a record too many or few
    lambda lines, rng: _set_line(
        lines, rng, lambda line, kind, _index: line.replace(b"A", b"C", 1)
    ),
    lambda lines, rng: _set_line(
        lines, rng, lambda line, kind, _index: line.split(b" ")[0] + b" other"
    ),
    lambda lines, rng: lines[rng.choice(list(lines))].extend([b"@x", b"A", b"+", b"F"]),
    lambda lines, rng: lines[rng.choice(list(lines))].pop(),
]


@pytest.mark.parametrize("seed", range(4))
def test_the_c_encoder_makes_the_python_bytes_or_declines(seed):
    """Random valid blocks (which it must accept) and mutated ones (one to three oddities each,
    anywhere): whenever C returns bytes, they are those of the Python paths, and of the fast
    path in particular; BlockEncoder as the converter uses it gives the Python result always."""
    rng = random.Random(seed)
    accepted = {"valid": 0, "mutated": 0}
    mutated_cases = 0
    for case in range(600):
        layout, lines, names = _valid_block(rng)
        mutate = case % 4 != 0
        if mutate:
            for _ in range(rng.choice([1, 1, 2, 3])):
                if rng.random() < 0.3:
                    _rename_read(lines, names, rng)
                elif all(len(block) >= 4 for block in lines.values()):  # not after a pop()
                    rng.choice(MUTATIONS)(lines, rng)
            mutated_cases += 1
        compiled = _compiled(layout, lines)
        python, fast = _python(layout, lines)
        if not mutate:
            assert compiled is not None, (layout, lines)
            assert python is not None
        if compiled is not None:
            accepted["mutated" if mutate else "valid"] += 1
            assert compiled == fast == python, (layout, lines)
        encoder = BlockEncoder(layout, dict.fromkeys(layout.files, _Stream()))
        try:
            used = encoder.encode(lines, 1, set())
        except (ConversionError, ValueError, IndexError):
            used = None
        assert used == python
    assert accepted["valid"] == 150
    # Some oddities are harmless (a quality changed to another quality): not all are declined.
    assert 0 < accepted["mutated"] < mutated_cases


@pytest.mark.parametrize("tail", [b" 1:N:0:GATC", b""])
def test_every_byte_value_in_every_line_of_every_file(tail):
    """Each of the 256 byte values put in each line (at its start, middle and end) of one read
    in each file: accepted only where the Python fast path makes the same bytes."""
    schema = SCHEMAS["10xV3"]
    indexes = ("read1", "read2", "index1")
    layout = Layout(schema, {index: FileLayout(index, tail) for index in indexes})
    read = [b"@A00123:8:1101:1000" + tail, b"ACGTN" * 6, b"+", b"FF:,#" * 6]
    base = {index: read * 3 for index in indexes}
    accepted = 0
    for index in indexes:
        for line in range(4, 8):  # the second read's four lines
            for value in range(256):
                length = len(base[index][line])
                for at in sorted({0, 1, length // 2, length - 1} & set(range(length))):
                    lines = {i: [*block] for i, block in base.items()}
                    changed = bytearray(lines[index][line])
                    changed[at] = value
                    lines[index][line] = bytes(changed)
                    compiled = _compiled(layout, lines)
                    if compiled is not None:
                        accepted += 1
                        assert compiled == _python(layout, lines)[1], (index, line, value, at)
    assert accepted > 1000


def test_the_converter_uses_it_only_for_plain_layouts():
    schema = SCHEMAS["10xV3"]
    plain = {"read1": FileLayout("r1"), "read2": FileLayout("r2")}
    assert BlockEncoder(Layout(schema, plain), {})._compiled_args is not None
    assert BlockEncoder(Layout(schema, plain), {}, compiled=False)._compiled_args is None
    for odd in (FileLayout("r2", eol=b"\r\n"), FileLayout("r2", plus_repeats_header=True)):
        files = {**plain, "read2": odd}
        assert BlockEncoder(Layout(schema, files), {})._compiled_args is None


def _lines(reads: int = 2) -> list[bytes]:
    return [b"@r", b"A" * 30, b"+", b"F" * 30] * reads


def test_the_plain_control_block_is_accepted():
    records = _encode_block.encode(_lines(), _lines(), _lines(), b"", b"", b"", 16, 28)
    layout = Layout(SCHEMAS["10xV3"], {i: FileLayout(i) for i in ("read1", "read2", "index1")})
    assert records == _python(layout, dict.fromkeys(layout.files, _lines()))[0]


@pytest.mark.parametrize(
    "args",
    [
        ([*_lines()[:3], "F" * 30], _lines(), None, b"", b"", b"", 16, 28),
        (_lines(), [None, *_lines()[1:]], None, b"", b"", b"", 16, 28),
        (_lines(), [bytearray(b"@r"), *_lines()[1:]], None, b"", b"", b"", 16, 28),
        (_lines(), [memoryview(b"@r"), *_lines()[1:]], None, b"", b"", b"", 16, 28),
        (_lines(), [type("B", (bytes,), {})(b"@r"), *_lines()[1:]], None, b"", b"", b"", 16, 28),
        (_lines(), _lines(), [1, 2, 3, 4, 5, 6, 7, 8], b"", b"", b"", 16, 28),
        (_lines(), _lines()[:-1], None, b"", b"", b"", 16, 28),
        (_lines()[:-4], _lines(), None, b"", b"", b"", 16, 28),
        (_lines(), _lines(), _lines(3), b"", b"", b"", 16, 28),
        ([], [], None, b"", b"", b"", 16, 28),
        ([b"@r"] * 4, [b"@r"] * 4, None, b"", b"", b"", 0, 0),
        (_lines(), _lines(), None, b"", b"", b"", -1, 28),
        (_lines(), _lines(), None, b"", b"", b"", 16, 15),
        (_lines(), _lines(), None, b"", b"", b"", 16, 2**40),
        (_lines(), _lines(), None, b"", b"", b"", 2**70, 28),
        (_lines(), _lines(), None, b"", b"", b"", 16, -(2**70)),
        (_lines(), _lines(), None, b"\t", b"", b"", 16, 28),
        (_lines(), _lines(), None, b"", b"\n", b"", 16, 28),
        (_lines(), _lines(), _lines(), b"", b"", b"\xff", 16, 28),
    ],
)
def test_odd_contents_are_declined(args):
    assert _encode_block.encode(*args) is None


@pytest.mark.parametrize(
    "args",
    [
        (),
        (_lines(), _lines(), None, b"", b"", b"", 16),
        (tuple(_lines()), _lines(), None, b"", b"", b"", 16, 28),
        (_lines(), b"".join(_lines()), None, b"", b"", b"", 16, 28),
        (_lines(), _lines(), "I1", b"", b"", b"", 16, 28),
        (_lines(), _lines(), _lines(), b"", b"", None, 16, 28),
        (_lines(), _lines(), None, "", b"", b"", 16, 28),
        (_lines(), _lines(), None, b"", bytearray(), b"", 16, 28),
        (_lines(), _lines(), None, b"", b"", b"", "16", 28),
        (_lines(), _lines(), None, b"", b"", b"", 16, 28.0),
        (_lines(), _lines(), None, b"", b"", b"", True, 28),
    ],
)
def test_wrong_argument_types_raise_type_error(args):
    with pytest.raises(TypeError):
        _encode_block.encode(*args)


def test_keywords_are_refused():
    with pytest.raises(TypeError):
        _encode_block.encode(_lines(), _lines(), None, b"", b"", b"", 16, barcode_umi_length=28)


def test_a_missing_extension_fails_at_import_and_says_how_to_build_it():
    program = (
        "import sys; sys.modules['hca_archive.convert._encode_block'] = None; "
        "import hca_archive.convert.layout"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert done.returncode == 1
    assert "C extension) is not built: run `make install`" in done.stderr


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc")
def test_the_c_source_compiles_without_warnings(tmp_path):
    include = sysconfig.get_paths()["include"]
    command = ["gcc", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-O2", f"-I{include}"]
    done = subprocess.run([*command, str(SOURCE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _differential(layout: Layout, lines: dict) -> bytes | None:
    """C's result, after checking it against the Python paths: the fast path's bytes whenever C
    returns bytes, and None wherever the Python paths refuse the block (ConversionError)."""
    compiled = _compiled(layout, lines)
    python, fast = _python(layout, lines)
    if compiled is not None:
        assert compiled == fast == python, (layout, lines)
    if python is None:
        assert compiled is None, (layout, lines)
    return compiled


def _block(tails: dict, reads: list[dict], schema=SCHEMAS["10xV3"]) -> tuple[Layout, dict]:
    """A layout with these default tails, and a block of reads: per read and file, the header
    (without '@' unless given as `raw`), and optionally seq/qual."""
    lines: dict[str, list[bytes]] = {index: [] for index in tails}
    for read in reads:
        for index in tails:
            default_seq = {"read1": b"A" * schema.barcode_umi_length, "read2": b"ACG"}
            seq = read.get(f"{index}_seq", default_seq.get(index, b"GATC"))
            qual = read.get(f"{index}_qual", b"F" * len(seq))
            header = read.get(f"{index}_raw", b"@" + read.get(index, read["name"]))
            lines[index] += [header, seq, b"+", qual]
    layout = Layout(schema, {index: FileLayout(index, tail) for index, tail in tails.items()})
    return layout, lines


R12I = ("read1", "read2", "index1")


@pytest.mark.parametrize(
    ("tail", "headers", "accepted"),
    [
        # whole: names that end with the tail's text, or hold part of it
        (b" 1", [b"r 1 1", b"s 1"], False),  # a space in a name
        (b"/1", [b"r/1/1", b"s/1"], True),
        (b"11", [b"r111", b"111"], True),
        (b"ab", [b"abab", b"xab"], True),
        (b"@", [b"r@", b"@@"], False),  # a name starting with '@'
        (b"@", [b"r@", b"x@@"], True),
        # headers of exactly '@' + tail: empty names
        (b" 1:N", [b"r 1:N", b" 1:N"], False),
        (b" 1:N", [b" 1:N"], False),
        (b"/1", [b"r/1", b"/1"], False),
        (b"", [b"r", b"s"], True),
        # per read: tails with spaces, empty, the default's prefix, several spaces
        (b" 1:N", [b"r 1:N", b"s", b"t ", b"u 1:N x", b"v 1", b"w  1:N"], True),
        (b" ", [b"r ", b"s", b"t  ", b"u x y"], True),
        (b"  two  spaces", [b"r  two  spaces", b"s two spaces", b"t  two  spaces "], True),
        (b" 1:N", [b"r/1 1:N", b"s/1"], True),
        (b" 1:N", [b"@r 1:N", b"s"], False),  # '@' starting a name, per read
        (b"/1 1:N", [b"r/1 1:N", b"s/1 2:N"], False),  # no per-read case without a leading space
    ],
)
def test_header_cases_whole_and_per_read(tail, headers, accepted):
    layout, lines = _block(dict.fromkeys(R12I, tail), [{"name": h} for h in headers])
    assert (_differential(layout, lines) is not None) is accepted


@pytest.mark.parametrize("indexes", [R12I, R12I[:2]])
def test_per_read_tails_in_every_file_come_in_python_order(indexes):
    tails = {"read1": b" 1:N", "read2": b" 2:N", "index1": b" i"}
    reads = [
        {"name": b"a", "read1": b"a x", "read2": b"a y", "index1": b"a z"},
        {"name": b"b", "read1": b"b 1:N", "read2": b"b", "index1": b"b i"},
        {"name": b"c", "read1": b"c", "read2": b"c 2:N", "index1": b"c"},
    ]
    layout, lines = _block({i: tails[i] for i in indexes}, reads)
    records = _differential(layout, lines)
    assert records is not None and b"t1Zx" not in records and b"t1Z x" in records


@pytest.mark.parametrize(
    ("name", "accepted"), [(b"N" * 253, True), (b"N" * 254, True), (b"N" * 255, False)]
)
@pytest.mark.parametrize("tail", [b"", b" 1:N", b"/1"])
def test_read_names_up_to_254_bytes(name, accepted, tail):
    # the long name in the second read only, per read (the first header has another tail)
    reads = [{"name": b"r", "read1": b"r 0:Y" if tail == b" 1:N" else b"r" + tail}, {"name": name}]
    layout, lines = _block(
        dict.fromkeys(R12I, tail), [{**r, "name": r["name"] + tail} for r in reads]
    )
    records = _differential(layout, lines)
    assert (records is not None) is accepted
    if accepted:
        assert records[-len(records) + 4 + 36 + 2 + 8 :].count(bytes([len(name) + 1])) >= 1


@pytest.mark.parametrize("extra", [-28, -1, 0, 1, 2, 63])
@pytest.mark.parametrize("indexes", [R12I, R12I[:2]])
def test_r1_lengths_around_barcode_and_umi(extra, indexes):
    schema = SCHEMAS["10xV3"]
    length = schema.barcode_umi_length + extra
    reads = [
        {"name": b"a", "read1_seq": b"AC~ "[:1] * length, "read1_qual": b"~" * length},
        {"name": b"b", "read1_seq": b" " * length, "read1_qual": b"!" * length},
    ]
    layout, lines = _block(dict.fromkeys(indexes, b""), reads, schema)
    records = _differential(layout, lines)
    assert (records is not None) is (extra >= 0)
    # R1 of lengths that differ: Python's fast path takes them, C declines (more than Python)
    lines["read1"][1] += b"A"
    lines["read1"][3] += b"F"
    assert _differential(layout, lines) is None


@pytest.mark.parametrize("length", [1, 2, 3, 4, 5, 151])
@pytest.mark.parametrize("quality", [b"!", b"~", b"F", b" ", b"\x7f", b"*"])
def test_r2_lengths_and_quality_boundaries(length, quality):
    reads = [
        {"name": b"a", "read2_seq": (b"ACGTN" * 31)[:length], "read2_qual": (b"!~" * 76)[:length]},
        {"name": b"b", "read2_seq": b"N" * length, "read2_qual": quality * length},
    ]
    layout, lines = _block(dict.fromkeys(R12I, b" 1:N"), reads)
    records = _differential(layout, lines)
    valid = b"!"[0] <= quality[0] <= b"~"[0] and not (length == 1 and quality == b"*")
    assert (records is not None) is valid


@pytest.mark.parametrize("index", R12I)
@pytest.mark.parametrize("change", [1, 2, 3, 4, -1, -4])
def test_files_that_disagree_in_line_count_are_declined(index, change):
    layout, lines = _block(dict.fromkeys(R12I, b""), [{"name": b"a"}, {"name": b"b"}])
    block = lines[index]
    lines[index] = block + block[:change] if change > 0 else block[:change]
    assert _differential(layout, lines) is None


@pytest.mark.parametrize("bad", [b"\t", b"\r", b"\x7f", b"\x80", b"\x00", b"\n"])
@pytest.mark.parametrize("index", R12I)
def test_tails_that_are_not_printable_are_declined(bad, index):
    tails = dict.fromkeys(R12I, b" 1:N")
    tails[index] = b" 1" + bad + b"N"
    reads = [{"name": b"a", **{i: b"a" + tails[i] for i in R12I}}]
    layout, lines = _block(tails, reads)
    assert _differential(layout, lines) is None


def test_an_absent_i1_leaves_its_tail_unread():
    layout, lines = _block(dict.fromkeys(R12I[:2], b""), [{"name": b"a"}])
    args = (lines["read1"], lines["read2"], None, b"", b"", b"\t\x00", 16, 28)
    assert _encode_block.encode(*args) == _python(layout, lines)[1]


@pytest.mark.parametrize("seed", range(2))
def test_colliding_names_and_tails_from_a_small_alphabet(seed):
    """Short names and tails from a few bytes ('@', space, '/', '1', ...), so that tails overlap
    names, names end with the tail's text, headers are '@' + tail, names are empty or start with
    '@'; R1 around barcode+UMI, short R2 at the quality boundaries, I1 or not."""
    rng = random.Random(seed)
    name_bytes, tail_bytes = b"ab@ /1x", b" a1/@x"

    def text(alphabet: bytes, low: int, high: int) -> bytes:
        return bytes(rng.choice(alphabet) for _ in range(rng.randint(low, high)))

    accepted = per_read = 0
    for _ in range(3000):
        bc = rng.choice([0, 1, 2])
        schema = Schema("t", bc, rng.choice([0, 1]))
        bu = schema.barcode_umi_length
        indexes = R12I if rng.random() < 0.5 else R12I[:2]
        space = b" " if rng.random() < 0.5 else b""
        tails = {index: space + text(tail_bytes, 0, 3) for index in indexes}
        k = rng.randint(1, 4)
        r1_length = bu + rng.choice([-1, 0, 1, 2, 2])
        reads = []
        for _read in range(k):
            name = text(name_bytes, 1, 3)
            read = {"name": name}
            for index in indexes:
                tail = tails[index] if rng.random() < 0.7 else text(tail_bytes, 0, 3)
                read[f"{index}_raw"] = b"@" + name + tail
            length = rng.choice([1, 1, 2, 3])
            read["read2_seq"] = text(b"ACGTN", length, length)
            read["read2_qual"] = text(
                b"!~F" + (b" \x7f*" if rng.random() < 0.1 else b""), length, length
            )
            length = max(0, r1_length)
            read["read1_seq"] = text(b"A ~!", length, length)
            read["read1_qual"] = text(b"F ~", length, length)
            length = rng.choice([0, 1, 2])
            read["index1_seq"], read["index1_qual"] = (
                text(b"A ~", length, length),
                text(b"!~", length, length),
            )
            reads.append(read)
        layout, lines = _block(tails, reads, schema)
        records = _differential(layout, lines)
        if records is not None:
            accepted += 1
            per_read += any(tag in records for tag in (b"t1Z", b"t2Z", b"tiZ"))
    assert accepted > 100 and per_read > 30

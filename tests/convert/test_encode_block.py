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
from hca_archive.convert.schema import SCHEMAS
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
                else:
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

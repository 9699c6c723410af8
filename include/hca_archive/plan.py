"""The file upload plan: parsed, validated and typed before anything acts on it.

A plan comes from a remote service, so every name and URL in it is untrusted. Validation reports
every problem at once, each as ``job <n> (manifest <id>): <field>: <what is wrong>``, where ``n``
is the job's 0-based position in the plan (the same number as ``PlanJob.index`` and ``--job``).

Rules beyond the shape of services.md section 4:

- File, input, output names and manifest ids must be usable as ONE path component: not empty, not
  ``.``/``..``, no ``/`` or ``\\``, no control or invisible format characters (newlines, NUL, bidi
  overrides), at most 200 bytes of UTF-8 (a file system allows 255, and the job keeps files
  named after them with suffixes such as ``.verified.json`` and temporary names around those),
  and not starting with ``-`` (a name handed to a command must not read as an option). They
  must also hold no shell metacharacters (:data:`SHELL_METACHARACTERS`:
  ``; & | < > ` $ ( ) { } [ ] * ? ! " ' # ~``) and no space but U+0020. No plan value goes
  through a shell, but no real file needs these, and a name someone copies into a terminal must
  not run anything. Letters, digits, plain spaces and
  ``. _ - + = @ , % :`` stay allowed (``SRR1234_S1_L001_R1_001.fastq.gz``, ``donor 1.fastq.gz``).
- ``read_index`` is read1, read2, index1 or index2. index2 (a dual-index run's I2) is accepted for
  files uploaded as they are, but not as a conversion input: the 10x BAM layout has no slot for it.
- ``cloud_url`` is ``s3://<bucket>/<key>`` with a valid bucket name and a key with no ``.``/``..``
  segments and no control characters.
- ``dsp_api_url`` is http(s) with or without ``/api/`` and is normalised to the bare root; a
  link-local host (a cloud metadata service) is refused. ``submission_url`` must be on the same
  host and be ``/api/submissions/<id>``. Pass ``dsp_url`` to :func:`parse_plan` to also require
  the configured DSP: the plan decides where the AAP token is sent.
- Every name a job uploads (``files[].name``) is unique in the whole plan; within a job, no two
  local files (inputs, outputs, plain files) share a name.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from hca_archive.url_credentials import redact_urls

READ_INDEXES = ("read1", "read2", "index1", "index2")
CONVERSION_READ_INDEXES = ("read1", "read2", "index1")
SCHEMAS = ("10xV2", "10xV3")
MAX_NAME_BYTES = 200  # leaves 55 bytes for the suffixes of the job's own files (28 used)
MAX_KEY_BYTES = 1024
# Ten times the largest HCA submission's sequencing runs; a 10,000-job plan is tested end to end
# (it maps to 1,024 tasks). Beyond it a plan is refused before its jobs are read.
MAX_PLAN_JOBS = 10_000
MESSAGE_PROBLEMS = 100  # PlanError's message lists this many; ``problems`` keeps them all

JOB_KEYS = {
    "dsp_api_url",
    "submission_url",
    "dcp_bundle_uuid",
    "manifest_id",
    "files",
    "conversion",
    "ingest_api_url",  # in old plans; unused
}
FILE_KEYS = {"name", "read_index", "cloud_url"}
CONVERSION_KEYS = {"output_name", "schema", "inputs"}
INPUT_KEYS = {"name", "read_index", "cloud_url"}

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_SUBMISSION_PATH = re.compile(r"^/api/submissions/([A-Za-z0-9][A-Za-z0-9_.-]*)/?$")


class PlanError(ValueError):
    """An invalid plan; ``problems`` lists every problem found, one line each."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        shown = [f"- {problem}" for problem in self.problems[:MESSAGE_PROBLEMS]]
        if len(self.problems) > MESSAGE_PROBLEMS:
            shown.append(f"- ... and {len(self.problems) - MESSAGE_PROBLEMS} more")
        super().__init__(
            f"invalid upload plan, {len(self.problems)} problem(s):\n" + "\n".join(shown)
        )


@dataclass(frozen=True)
class PlanFile:
    """A file to upload; ``cloud_url`` is where to fetch it unless a conversion makes it."""

    name: str
    read_index: str | None = None
    cloud_url: str | None = None

    def to_dict(self) -> dict[str, str]:
        data = {"name": self.name}
        if self.read_index is not None:
            data["read_index"] = self.read_index
        if self.cloud_url is not None:
            data["cloud_url"] = self.cloud_url
        return data


@dataclass(frozen=True)
class ConversionInput:
    name: str
    read_index: str
    cloud_url: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "read_index": self.read_index, "cloud_url": self.cloud_url}


@dataclass(frozen=True)
class Conversion:
    output_name: str
    schema: str
    inputs: tuple[ConversionInput, ...]

    def input_for(self, read_index: str) -> ConversionInput | None:
        return next((i for i in self.inputs if i.read_index == read_index), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "output_name": self.output_name,
            "schema": self.schema,
            "inputs": [i.to_dict() for i in self.inputs],
        }


@dataclass(frozen=True)
class PlanJob:
    index: int
    dsp_api_url: str  # normalised: scheme://host[:port], no /api/
    submission_url: str
    submission_id: str
    manifest_id: str
    files: tuple[PlanFile, ...]
    conversion: Conversion | None
    dcp_bundle_uuid: str | None = None

    @property
    def label(self) -> str:
        """``<manifest_id>/<output name>``; a job without conversion names its files joined by +."""
        if self.conversion is not None:
            return f"{self.manifest_id}/{self.conversion.output_name}"
        return f"{self.manifest_id}/{'+'.join(f.name for f in self.files)}"

    @property
    def downloads(self) -> tuple[tuple[str, str], ...]:
        """``(local name, cloud_url)`` of everything the job fetches: inputs, then plain files."""
        inputs = self.conversion.inputs if self.conversion is not None else ()
        return tuple((i.name, i.cloud_url) for i in inputs) + tuple(
            (f.name, f.cloud_url) for f in self.files if f.cloud_url is not None
        )

    @property
    def uploads(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        """The job as plan JSON; ``parse_plan({"jobs": [job.to_dict()]})`` gives it back."""
        data: dict[str, Any] = {
            "dsp_api_url": self.dsp_api_url,
            "submission_url": self.submission_url,
        }
        if self.dcp_bundle_uuid is not None:
            data["dcp_bundle_uuid"] = self.dcp_bundle_uuid
        data["manifest_id"] = self.manifest_id
        data["files"] = [f.to_dict() for f in self.files]
        if self.conversion is not None:
            data["conversion"] = self.conversion.to_dict()
        return data


@dataclass(frozen=True)
class Plan:
    jobs: tuple[PlanJob, ...]


def parse_plan(
    data: Any, *, max_jobs: int | None = MAX_PLAN_JOBS, dsp_url: str | None = None
) -> Plan:
    """Validate ``{"jobs": [...]}`` (or a bare job list); raise PlanError naming every problem.

    ``max_jobs`` bounds the plan's size; ``dsp_url`` requires every job to target that DSP.
    """
    problems: list[str] = []
    expected_root = None
    if dsp_url is not None:
        expected_root, problem = _dsp_root(dsp_url)
        if problem:
            raise ValueError(f"dsp_url {_show(redact_urls(dsp_url))}: {problem}")
    raw_jobs = _job_list(data, problems)
    if raw_jobs is not None:
        if not raw_jobs:
            problems.append("plan has no jobs")
        if max_jobs is not None and len(raw_jobs) > max_jobs:
            raise PlanError([f"plan has {len(raw_jobs)} jobs, more than the limit of {max_jobs}"])
    jobs = []
    uploaded_by: dict[str, int] = {}
    for index, raw in enumerate(raw_jobs or ()):
        job = _JobReader(index, raw, problems, expected_root).read(uploaded_by)
        if job is not None:
            jobs.append(job)
    if problems:
        raise PlanError(problems)
    return Plan(tuple(jobs))


def parse_s3_url(url: Any) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``; ValueError saying what is wrong otherwise."""
    if not isinstance(url, str):
        raise ValueError(f"must be a string, got {_type(url)}")
    if not url.startswith("s3://"):
        raise ValueError(f"must be an s3://bucket/key URL, got {_show(url)}")
    bad = _bad_characters(url)
    if bad:
        raise ValueError(f"contains {bad}")
    bucket, _, key = url[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError("has no bucket")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise ValueError(f"bucket {_show(bucket)} is not a valid S3 bucket name")
    if not key:
        raise ValueError("has no key")
    if key.startswith("/"):
        raise ValueError("key starts with '/'")
    if any(part in (".", "..") for part in key.split("/")):
        raise ValueError("key has a '.' or '..' segment")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise ValueError(f"key is longer than {MAX_KEY_BYTES} bytes")
    return bucket, key


# No plan value reaches a shell; names with these are refused anyway (see the module docstring).
# A backslash is refused as a path separator, and tabs and newlines as control characters.
SHELL_METACHARACTERS = frozenset(";&|<>`$(){}[]*?!\"'#~")


# What the file job names a file while it downloads it (filejob/s3download.py): a plan name like
# that could overwrite another file's partial download or be read as its resume record.
PARTIAL_SUFFIX, RESUME_SUFFIX = ".part", ".part.json"
DOWNLOAD_SUFFIXES = (PARTIAL_SUFFIX, RESUME_SUFFIX)


def name_problems(name: str) -> list[str]:
    """What makes ``name`` unusable as one path component (empty when it is fine)."""
    if not name:
        return ["is empty"]
    problems = []
    if name in (".", ".."):
        problems.append(f"is {name!r}")
    for separator in ("/", "\\"):
        if separator in name:
            problems.append(f"contains {separator!r}")
    bad = _bad_characters(name)
    if bad:
        problems.append(f"contains {bad}")
    elif len(name.encode()) > MAX_NAME_BYTES:
        problems.append(f"is {len(name.encode())} bytes in UTF-8 (at most {MAX_NAME_BYTES})")
    if name.startswith("-"):
        problems.append("starts with '-' (would read as a command-line option)")
    if name.startswith(" ") or name.endswith(" "):  # other blanks are refused above
        problems.append("starts or ends with a space")
    if name.endswith(DOWNLOAD_SUFFIXES):
        problems.append(f"ends with {' or '.join(DOWNLOAD_SUFFIXES)} (a download in progress)")
    shell = sorted(set(name) & SHELL_METACHARACTERS)
    if shell:
        problems.append(f"contains shell metacharacters {' '.join(shell)}")
    spaces = () if name.isascii() else sorted({ch for ch in name if _other_space(ch)})
    if spaces:
        described = ", ".join(f"U+{ord(ch):04X}" for ch in spaces)
        problems.append(f"contains a space other than U+0020 ({described})")
    invisible = () if name.isascii() else sorted({ch for ch in name if _invisible(ch)})
    if invisible:
        described = ", ".join(f"U+{ord(ch):04X}" for ch in invisible)
        problems.append(f"contains a character that shows as nothing ({described})")
    return problems


def _other_space(ch: str) -> bool:
    """A space separator that is not U+0020: no-break, em, ideographic and the like."""
    return ch != " " and unicodedata.category(ch) == "Zs"


# Letters and marks that render as blank or as nothing although they are neither spaces nor
# format characters: two names differing only by one look alike in every listing. Hangul fillers,
# the Braille blank, the combining grapheme joiner, Khmer inherent vowels, variation selectors.
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5")
_INVISIBLE_RANGES = ((0x180B, 0x180F), (0xFE00, 0xFE0F), (0xE0100, 0xE01EF))


def _invisible(ch: str) -> bool:
    code = ord(ch)
    return ch in _INVISIBLE or any(low <= code <= high for low, high in _INVISIBLE_RANGES)


def _bad_characters(text: str) -> str | None:
    """The first control, format, line-separator or surrogate character, described."""
    if text.isascii() and text.isprintable():  # the common case, without a per-character loop
        return None
    for ch in text:
        category = unicodedata.category(ch)
        if category in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp"):
            what = "a NUL character" if ch == "\0" else "a control character"
            return f"{what} (U+{ord(ch):04X})"
    return None


def _show(value: Any, limit: int = 60) -> str:
    """An untrusted value quoted for a one-line message: escaped and truncated."""
    text = repr(value)[1:-1] if isinstance(value, str) else repr(value)  # repr escapes controls
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"'{text}'"


def _type(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _job_list(data: Any, problems: list[str]) -> list[Any] | None:
    if isinstance(data, list):
        return data
    if not isinstance(data, Mapping):
        problems.append(f"plan must be an object with 'jobs' or a list of jobs, got {_type(data)}")
        return None
    for key in sorted(set(data) - {"jobs"}, key=str):
        problems.append(f"plan: unknown key {_show(key)}")
    jobs = data.get("jobs")
    if not isinstance(jobs, list):
        problems.append(f"plan: jobs must be a list, got {_type(jobs)}")
        return None
    return jobs


def _dsp_root(url: Any) -> tuple[str | None, str | None]:
    """(normalised root, None) or (None, problem) for a DSP URL with or without /api/."""
    if not isinstance(url, str):
        return None, f"must be a string, got {_type(url)}"
    parts, problem = _http_url(url)
    if problem:
        return None, problem
    if parts.path not in ("", "/", "/api", "/api/"):
        return None, f"must be the DSP root (optionally with /api/), got path {_show(parts.path)}"
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}", None


def _http_url(url: str) -> tuple[Any, str | None]:
    bad = _bad_characters(url)
    if bad:
        return None, f"contains {bad}"
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        return None, f"must be an http(s) URL, got {_show(redact_urls(url))}"
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return None, f"has an invalid port: {_show(redact_urls(url))}"
    if not parts.hostname:
        return None, "has no host"
    if "@" in parts.netloc:
        return None, "must not carry credentials"
    if parts.query or parts.fragment:
        return None, "must not have a query or fragment"
    try:
        if ipaddress.ip_address(parts.hostname).is_link_local:
            return None, f"points to a link-local address {_show(parts.hostname)}"
    except ValueError:
        pass  # a host name, not an address
    return parts, None


class _JobReader:
    """Reads one job, adding ``job <n> (manifest <id>): <field>: <what>`` problems."""

    def __init__(self, index: int, raw: Any, problems: list[str], expected_root: str | None):
        self.index = index
        self.raw = raw
        self.problems = problems
        self.expected_root = expected_root
        manifest = raw.get("manifest_id") if isinstance(raw, Mapping) else None
        self.prefix = f"job {index} (manifest {_show(manifest)[1:-1] if manifest else '?'})"

    def problem(self, field: str, what: str) -> None:
        self.problems.append(f"{self.prefix}: {field}: {what}")

    def read(self, uploaded_by: dict[str, int]) -> PlanJob | None:
        raw = self.raw
        if not isinstance(raw, Mapping):
            self.problems.append(f"job {self.index}: must be an object, got {_type(raw)}")
            return None
        before = len(self.problems)
        self.unknown_keys(raw, JOB_KEYS, "")
        manifest_id = self.name(raw.get("manifest_id"), "manifest_id")
        dsp_root = self.dsp_api_url(raw.get("dsp_api_url"))
        submission_id = self.submission_url(raw.get("submission_url"), dsp_root)
        bundle = raw.get("dcp_bundle_uuid")
        if bundle is not None and not isinstance(bundle, str):
            self.problem("dcp_bundle_uuid", f"must be a string or null, got {_type(bundle)}")
        conversion = self.conversion(raw["conversion"]) if "conversion" in raw else None
        files = self.files(raw.get("files"), conversion)
        self.local_names_unique(files, conversion)
        self.uploads_unique(files, uploaded_by)
        if len(self.problems) > before:
            return None
        return PlanJob(
            index=self.index,
            dsp_api_url=dsp_root,
            submission_url=raw["submission_url"],
            submission_id=submission_id,
            manifest_id=manifest_id,
            files=files,
            conversion=conversion,
            dcp_bundle_uuid=bundle,
        )

    def unknown_keys(self, raw: Mapping[str, Any], known: set[str], field: str) -> None:
        for key in sorted(set(raw) - known, key=str):
            self.problem(field.rstrip(".") or "job", f"unknown key {_show(key)}")

    def string(self, value: Any, field: str) -> str | None:
        if isinstance(value, str):
            return value
        self.problem(field, "missing" if value is None else f"must be a string, got {_type(value)}")
        return None

    def name(self, value: Any, field: str) -> Any:
        name = self.string(value, field)
        if name is not None:
            for what in name_problems(name):
                self.problem(field, what)
        return name

    def read_index(self, value: Any, field: str, allowed: tuple[str, ...]) -> Any:
        if value is None:
            self.problem(field, "missing")
        elif value not in allowed:
            if value == "index2" and allowed is CONVERSION_READ_INDEXES:
                self.problem(field, "index2 is not supported by the 10x conversion")
            else:
                self.problem(field, f"{_show(value)} is not one of {', '.join(allowed)}")
        return value

    def cloud_url(self, value: Any, field: str) -> Any:
        if value is None:
            self.problem(field, "missing")
            return value
        try:
            parse_s3_url(value)
        except ValueError as error:
            self.problem(field, str(error))
        return value

    def dsp_api_url(self, value: Any) -> Any:
        root, problem = _dsp_root(value)
        if problem:
            self.problem("dsp_api_url", "missing" if value is None else problem)
        elif self.expected_root is not None and root != self.expected_root:
            self.problem("dsp_api_url", f"{_show(root)} is not the configured DSP")
            return None
        return root

    def submission_url(self, value: Any, dsp_root: str | None) -> Any:
        url = self.string(value, "submission_url")
        if url is None:
            return None
        parts, problem = _http_url(url)
        if problem:
            self.problem("submission_url", problem)
            return None
        if dsp_root and f"{parts.scheme}://{parts.netloc}".lower() != dsp_root:
            self.problem("submission_url", f"is not on the DSP host {_show(dsp_root)}")
        match = _SUBMISSION_PATH.match(parts.path)
        if not match:
            self.problem("submission_url", "must end in /api/submissions/<submission id>")
            return None
        return match.group(1)

    def conversion(self, raw: Any) -> Conversion | None:
        if not isinstance(raw, Mapping):
            self.problem("conversion", f"must be an object, got {_type(raw)}")
            return None
        self.unknown_keys(raw, CONVERSION_KEYS, "conversion.")
        output_name = self.name(raw.get("output_name"), "conversion.output_name")
        schema = raw.get("schema")
        if schema not in SCHEMAS:
            detail = "is missing (null)" if schema is None else f"{_show(schema)} is not supported"
            self.problem("conversion.schema", f"{detail}; expected {' or '.join(SCHEMAS)}")
        raw_inputs = raw.get("inputs")
        if not isinstance(raw_inputs, list) or not raw_inputs:
            self.problem("conversion.inputs", "must be a non-empty list")
            return None
        inputs = []
        for position, item in enumerate(raw_inputs):
            field = f"conversion.inputs[{position}]"
            if not isinstance(item, Mapping):
                self.problem(field, f"must be an object, got {_type(item)}")
                continue
            self.unknown_keys(item, INPUT_KEYS, f"{field}.")
            inputs.append(
                ConversionInput(
                    name=self.name(item.get("name"), f"{field}.name"),
                    read_index=self.read_index(
                        item.get("read_index"), f"{field}.read_index", CONVERSION_READ_INDEXES
                    ),
                    cloud_url=self.cloud_url(item.get("cloud_url"), f"{field}.cloud_url"),
                )
            )
        counts = Counter(i.read_index for i in inputs if isinstance(i.read_index, str))
        for read_index, expected in (("read1", "exactly once"), ("read2", "exactly once")):
            if counts[read_index] != 1:
                self.problem(
                    "conversion.inputs",
                    f"{read_index} {_times(counts[read_index])}, needs {expected}",
                )
        if counts["index1"] > 1:
            self.problem("conversion.inputs", f"index1 {_times(counts['index1'])}, at most once")
        return Conversion(output_name=output_name, schema=schema, inputs=tuple(inputs))

    def files(self, raw: Any, conversion: Conversion | None) -> tuple[PlanFile, ...]:
        if not isinstance(raw, list) or not raw:
            self.problem("files", "must be a non-empty list")
            return ()
        files = []
        for position, item in enumerate(raw):
            field = f"files[{position}]"
            if not isinstance(item, Mapping):
                self.problem(field, f"must be an object, got {_type(item)}")
                continue
            self.unknown_keys(item, FILE_KEYS, f"{field}.")
            name = self.name(item.get("name"), f"{field}.name")
            read_index = item.get("read_index")
            if read_index is not None:
                self.read_index(read_index, f"{field}.read_index", READ_INDEXES)
            cloud_url = item.get("cloud_url")
            is_output = conversion is not None and name == conversion.output_name
            if cloud_url is not None:
                self.cloud_url(cloud_url, f"{field}.cloud_url")
                if is_output:
                    self.problem(f"{field}.cloud_url", "set on the conversion's output")
            elif not is_output:
                self.problem(
                    f"{field}.cloud_url",
                    "missing (a file not made by the conversion needs a source)",
                )
            files.append(PlanFile(name=name, read_index=read_index, cloud_url=cloud_url))
        if conversion is not None and not any(f.name == conversion.output_name for f in files):
            self.problem("conversion.output_name", "is not listed in files[]")
        return tuple(files)

    def local_names_unique(
        self, files: tuple[PlanFile, ...], conversion: Conversion | None
    ) -> None:
        """Inputs and files of one job live in one directory: no two may share a name."""
        seen: dict[str, str] = {}
        entries = [
            (f"conversion.inputs[{n}].name", i.name)
            for n, i in enumerate(conversion.inputs if conversion else ())
        ]
        entries += [(f"files[{n}].name", f.name) for n, f in enumerate(files)]
        for field, name in entries:
            if not isinstance(name, str):
                continue
            if name in seen:
                self.problem(field, f"{_show(name)} is also {seen[name]}")
            else:
                seen[name] = field

    def uploads_unique(self, files: tuple[PlanFile, ...], uploaded_by: dict[str, int]) -> None:
        for position, file in enumerate(files):
            if not isinstance(file.name, str):
                continue
            other = uploaded_by.setdefault(file.name, self.index)
            if other != self.index:
                self.problem(
                    f"files[{position}].name", f"{_show(file.name)} is also uploaded by job {other}"
                )


def _times(count: int) -> str:
    return "is missing" if count == 0 else f"appears {count} times"

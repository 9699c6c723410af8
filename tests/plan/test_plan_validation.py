"""Hostile and broken plans: every problem reported at once, each naming job, manifest and field."""

from __future__ import annotations

import re

import pytest

from hca_archive.plan import MAX_PLAN_JOBS, PlanError, name_problems, parse_plan, parse_s3_url
from tests.plan.builders import DSP, conversion_job, plain_job


def problems_of(data, **options) -> list[str]:
    with pytest.raises(PlanError) as raised:
        parse_plan(data, **options)
    error = raised.value
    for problem in error.problems:
        assert "\n" not in problem and "\r" not in problem
        assert f"- {problem}" in str(error)
    return error.problems


def with_input_name(name: str, position: int = 1) -> dict:
    job = conversion_job()
    job["conversion"]["inputs"][position]["name"] = name
    return job


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../etc/passwd", "contains '/'"),
        ("/etc/passwd", "contains '/'"),
        ("a/b.fastq.gz", "contains '/'"),
        ("..\\..\\win.ini", "contains '\\\\'"),
        ("..", "is '..'"),
        (".", "is '.'"),
        ("", "is empty"),
        ("R2\n.fastq.gz", "contains a control character (U+000A)"),
        ("R2\r.fastq.gz", "contains a control character (U+000D)"),
        ("R2\x00.fastq.gz", "contains a NUL character (U+0000)"),
        ("R2\x1b[31m.fastq.gz", "contains a control character (U+001B)"),
        ("zg.\u202eqab.fastq.gz", "contains a control character (U+202E)"),
        ("R2\u2028.fastq.gz", "contains a control character (U+2028)"),
        ("x" * 201, "is 201 bytes in UTF-8 (at most 200)"),
        ("é" * 101, "is 202 bytes in UTF-8 (at most 200)"),
        ("-rf", "starts with '-'"),
        ("--output=/etc/passwd", "contains '/'"),
        ("R2.fastq.gz ", "starts or ends with a space"),
        (" R2.fastq.gz", "starts or ends with a space"),
        ("R1.fastq.gz.part", "ends with .part or .part.json (a download in progress)"),
        ("R1.fastq.gz.part.json", "ends with .part or .part.json"),
    ],
)
def test_unsafe_input_names_are_rejected(name, reason):
    problems = problems_of([with_input_name(name)])
    assert any(
        p.startswith("job 0 (manifest 1f2e3d4c): conversion.inputs[1].name: ") and reason in p
        for p in problems
    ), problems


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("R2;rm -rf ~.fastq.gz", "; ~"),
        ("$(curl evil).fastq.gz", "$ ( )"),
        ("`id`.fastq.gz", "`"),
        ('it\'s "quoted".fastq.gz', "\" '"),
        ("lane|1&2>3<4*?.fastq.gz", "& * < > ? |"),
        ("R2{1,2}[ab]!#.fastq.gz", "! # [ ] { }"),
    ],
)
def test_shell_metacharacters_are_refused_naming_job_and_field(name, shown):
    problems = problems_of([with_input_name(name)])
    field = "job 0 (manifest 1f2e3d4c): conversion.inputs[1].name"
    assert f"{field}: contains shell metacharacters {shown}" in problems, problems


@pytest.mark.parametrize(
    "field", ["manifest_id", "files[0].name", "conversion.output_name", "conversion.inputs[0].name"]
)
def test_shell_metacharacters_are_refused_in_every_name_field(field):
    job = conversion_job()
    hostile = "x;$(touch pwned)"
    if field == "manifest_id":
        job["manifest_id"] = hostile
    elif field == "conversion.inputs[0].name":
        job["conversion"]["inputs"][0]["name"] = hostile
    else:
        job["files"][0]["name"] = job["conversion"]["output_name"] = hostile
    problems = problems_of([job])
    assert any(
        p.startswith("job 0 (manifest ")
        and f": {field}: contains shell metacharacters $ ( ) ;" in p
        for p in problems
    ), problems


@pytest.mark.parametrize("space", ["\u00a0", "\u2003", "\u3000"])
def test_spaces_other_than_u0020_are_refused(space):
    problems = problems_of([with_input_name(f"R2{space}.fastq.gz")])
    what = f"contains a space other than U+0020 (U+{ord(space):04X})"
    assert f"job 0 (manifest 1f2e3d4c): conversion.inputs[1].name: {what}" in problems, problems


@pytest.mark.parametrize("blank", ["\u3164", "\u2800", "\u115f", "\ufe0f", "\U000e0100"])
def test_characters_that_show_as_nothing_are_refused(blank):
    problems = problems_of([with_input_name(f"R2{blank}.fastq.gz")])
    what = f"contains a character that shows as nothing (U+{ord(blank):04X})"
    assert f"job 0 (manifest 1f2e3d4c): conversion.inputs[1].name: {what}" in problems, problems


@pytest.mark.parametrize(
    "name",
    [
        "SRR1234_S1_L001_R1_001.fastq.gz",
        "R2 with spaces.fastq.gz",
        "donor 1 +lane=2@run,50%:x.fastq.gz",
        "x" * 200,
        "é" * 100,
    ],
)
def test_unusual_but_harmless_names_are_kept_verbatim(name):
    [job] = parse_plan([with_input_name(name)]).jobs
    assert job.conversion.inputs[1].name == name
    assert parse_plan([job.to_dict()]).jobs[0] == job


@pytest.mark.parametrize("bad", ["../x", "a\nb", "", "x" * 300])
def test_unsafe_output_and_file_names_and_manifest_ids(bad):
    job = conversion_job()
    job["conversion"]["output_name"] = bad
    job["files"][0]["name"] = bad
    plain = plain_job(manifest=bad)
    fields = {p.split(": ")[1] for p in problems_of([job, plain])}
    assert {"conversion.output_name", "files[0].name", "manifest_id"} <= fields


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "must be an s3://bucket/key URL"),
        ("http://169.254.169.254/latest/meta-data", "must be an s3://bucket/key URL"),
        ("https://bkt.s3.amazonaws.com/key", "must be an s3://bucket/key URL"),
        ("S3://bkt/key", "must be an s3://bucket/key URL"),
        ("s3://", "has no bucket"),
        ("s3:///key", "has no bucket"),
        ("s3://bkt", "has no key"),
        ("s3://bkt/", "has no key"),
        ("s3://bkt//etc/passwd", "key starts with '/'"),
        ("s3://bkt/../other-bucket/key", "'..' segment"),
        ("s3://bkt/area/../../x", "'..' segment"),
        ("s3://bkt/area/./x", "'.' or '..' segment"),
        ("s3://bkt/a\nb", "control character (U+000A)"),
        ("s3://bkt/a\x00b", "NUL character"),
        ("s3://Bad_Bucket/key", "not a valid S3 bucket name"),
        ("s3://user:pw@bkt/key", "not a valid S3 bucket name"),
        ("s3://bkt:9000/key", "not a valid S3 bucket name"),
        ("s3://a..b/key", "not a valid S3 bucket name"),
        ("s3://bkt/" + "k" * 1025, "longer than 1024 bytes"),
        ("", "must be an s3://bucket/key URL"),
        (42, "must be a string, got int"),
    ],
)
def test_cloud_urls_must_be_plain_s3_urls(url, reason):
    job = conversion_job()
    job["conversion"]["inputs"][0]["cloud_url"] = url
    plain = plain_job()
    plain["files"][1]["cloud_url"] = url

    problems = problems_of([job, plain])

    assert any(
        p.startswith("job 0 (manifest 1f2e3d4c): conversion.inputs[0].cloud_url: ") and reason in p
        for p in problems
    ), problems
    assert any(
        p.startswith("job 1 (manifest 9a8b7c6d): files[1].cloud_url: ") and reason in p
        for p in problems
    ), problems
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_s3_url(url)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data", "link-local address '169.254.169.254'"),
        ("https://submission.ebi.ac.uk/other/path", "must be the DSP root"),
        ("http://169.254.169.254/", "link-local address"),
        ("http://[fe80::1]/api/", "link-local address"),
        ("file:///api/", "must be an http(s) URL"),
        ("ftp://submission.ebi.ac.uk/", "must be an http(s) URL"),
        ("https://user:pw@submission.ebi.ac.uk/", "must not carry credentials"),
        ("https://submission.ebi.ac.uk/api/?x=1", "must not have a query"),
        ("https://submission.ebi.ac.uk:99999/", "invalid port"),
        ("https:///api/", "has no host"),
        ("https://submission.ebi.ac.uk/api\n/", "control character"),
        (None, "missing"),
    ],
)
def test_dsp_api_url_must_be_an_http_root(url, reason):
    problems = problems_of([conversion_job(dsp_api_url=url)])
    assert any(
        p.startswith("job 0 (manifest 1f2e3d4c): dsp_api_url: ") and reason in p for p in problems
    ), problems


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://evil.example/api/submissions/b729f228-1", "is not on the DSP host"),
        ("http://submission.ebi.ac.uk/api/submissions/b729f228-1", "is not on the DSP host"),
        (f"{DSP}/api/submissions/", "must end in /api/submissions/<submission id>"),
        (f"{DSP}/api/submissions/../files", "must end in /api/submissions/<submission id>"),
        (f"{DSP}/api/samples/b729f228-1", "must end in /api/submissions/<submission id>"),
        (f"{DSP}/api/submissions/b729f228-1?x=y", "must not have a query"),
        # the submission URL keys the job's upload lock: the same submission must not get two
        (f"{DSP}/api/submissions/b729f228-1#again", "must not have a query or fragment"),
        ("s3://bkt/x", "must be an http(s) URL"),
        (7, "must be a string, got int"),
    ],
)
def test_submission_url_must_name_a_submission_on_the_dsp_host(url, reason):
    problems = problems_of([conversion_job(submission_url=url)])
    assert any(
        p.startswith("job 0 (manifest 1f2e3d4c): submission_url: ") and reason in p
        for p in problems
    ), problems


def test_the_configured_dsp_can_be_required():
    job = conversion_job(
        dsp_api_url="https://evil.example", submission_url="https://evil.example/api/submissions/s"
    )
    [problem] = problems_of([job], dsp_url=f"{DSP}/api/")
    assert problem == (
        "job 0 (manifest 1f2e3d4c): dsp_api_url: 'https://evil.example' is not the configured DSP"
    )
    assert len(parse_plan([conversion_job()], dsp_url=DSP).jobs) == 1


@pytest.mark.parametrize(
    ("dsp_url", "reason"),
    [
        ("https://proxy:pw-SECRET-1@dsp.example/api/", "must not carry credentials"),
        ("https://proxy:pw-SECRET-1@dsp.example:44x", "has an invalid port"),
        ("ftp://proxy:pw-SECRET-1@dsp.example", "must be an http(s) URL"),
    ],
)
def test_a_configured_dsp_with_credentials_is_refused_without_showing_them(dsp_url, reason):
    # The environment's DSP URL comes from its connection (orchestration: fetch_plan; run-job:
    # HCA_DSP_URL); the error goes to the task log, the step's XCom record and the report.
    with pytest.raises(ValueError, match=re.escape(reason)) as raised:
        parse_plan([conversion_job()], dsp_url=dsp_url)
    assert "dsp.example" in str(raised.value)
    assert "SECRET" not in str(raised.value)


@pytest.mark.parametrize(
    ("schema", "reason"),
    [
        ("10xV1", "'10xV1' is not supported; expected 10xV2 or 10xV3"),
        (None, "is missing (null); expected 10xV2 or 10xV3"),
        ("10xv2", "'10xv2' is not supported"),
        ("SmartSeq2", "'SmartSeq2' is not supported"),
        (2, "'2' is not supported"),
    ],
)
def test_only_10x_v2_and_v3_convert(schema, reason):
    job = conversion_job(manifest="abc")
    job["conversion"]["schema"] = schema
    [problem] = problems_of([plain_job(), job])
    assert problem.startswith(f"job 1 (manifest abc): conversion.schema: {reason}")


def read_indexes(*indexes: str) -> dict:
    job = conversion_job()
    job["conversion"]["inputs"] = [
        {"name": f"in{n}.fastq.gz", "read_index": index, "cloud_url": f"s3://bkt/in{n}"}
        for n, index in enumerate(indexes)
    ]
    return job


@pytest.mark.parametrize(
    ("indexes", "expected"),
    [
        (
            ("read1", "read1", "read2"),
            ["conversion.inputs: read1 appears 2 times, needs exactly once"],
        ),
        (("read1",), ["conversion.inputs: read2 is missing, needs exactly once"]),
        (
            ("read1", "read2", "index1", "index1"),
            ["conversion.inputs: index1 appears 2 times, at most once"],
        ),
        (
            ("read1", "read2", "index2"),
            ["conversion.inputs[2].read_index: index2 is not supported by the 10x conversion"],
        ),
        (
            ("read1", "read2", "read3"),
            ["conversion.inputs[2].read_index: 'read3' is not one of read1, read2, index1"],
        ),
    ],
)
def test_conversion_inputs_need_read1_and_read2_once(indexes, expected):
    problems = problems_of([read_indexes(*indexes)])
    assert problems == [f"job 0 (manifest 1f2e3d4c): {e}" for e in expected]


def test_duplicate_output_names_across_jobs():
    problems = problems_of([conversion_job(), plain_job(), conversion_job(submission="other")])
    assert problems == [
        "job 2 (manifest 1f2e3d4c): files[0].name: '1f2e3d4c_1.bam' is also uploaded by job 0"
    ]


def test_names_collide_within_a_job():
    job = conversion_job()
    job["conversion"]["inputs"][1]["name"] = "R1.fastq.gz"
    plain = plain_job()
    plain["files"][1]["name"] = plain["files"][0]["name"]
    problems = problems_of([job, plain])
    assert problems == [
        "job 0 (manifest 1f2e3d4c): conversion.inputs[1].name: 'R1.fastq.gz' is also "
        "conversion.inputs[0].name",
        "job 1 (manifest 9a8b7c6d): files[1].name: '9a8b7c6d_R1.fastq.gz' is also files[0].name",
    ]


def test_output_must_be_uploaded_and_other_files_need_a_source():
    job = conversion_job()
    job["files"] = [{"name": "other.bam"}]
    plain = plain_job()
    del plain["files"][0]["cloud_url"]
    problems = problems_of([job, plain])
    assert problems == [
        "job 0 (manifest 1f2e3d4c): files[0].cloud_url: missing (a file not made by the "
        "conversion needs a source)",
        "job 0 (manifest 1f2e3d4c): conversion.output_name: is not listed in files[]",
        "job 1 (manifest 9a8b7c6d): files[0].cloud_url: missing (a file not made by the "
        "conversion needs a source)",
    ]


def test_unknown_keys_are_named():
    job = conversion_job(extra="x", **{"evil\nkey": 1})
    job["conversion"]["threads"] = 64
    job["files"][0]["md5"] = "abc"
    problems = problems_of({"jobs": [job], "version": 2})
    assert problems == [
        "plan: unknown key 'version'",
        "job 0 (manifest 1f2e3d4c): job: unknown key 'evil\\nkey'",
        "job 0 (manifest 1f2e3d4c): job: unknown key 'extra'",
        "job 0 (manifest 1f2e3d4c): conversion: unknown key 'threads'",
        "job 0 (manifest 1f2e3d4c): files[0]: unknown key 'md5'",
    ]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"jobs": []}, "plan has no jobs"),
        ([], "plan has no jobs"),
        ({}, "plan: jobs must be a list, got null"),
        ({"jobs": {"0": {}}}, "plan: jobs must be a list, got dict"),
        ("jobs", "plan must be an object with 'jobs' or a list of jobs, got str"),
        (None, "plan must be an object with 'jobs' or a list of jobs, got null"),
        ([None], "job 0: must be an object, got null"),
    ],
)
def test_empty_or_shapeless_plans(data, problem):
    assert problems_of(data) == [problem]


def test_missing_and_mistyped_fields():
    job = {"manifest_id": 5, "files": "x.bam", "conversion": [], "dcp_bundle_uuid": 1}
    assert problems_of([job]) == [
        "job 0 (manifest 5): manifest_id: must be a string, got int",
        "job 0 (manifest 5): dsp_api_url: missing",
        "job 0 (manifest 5): submission_url: missing",
        "job 0 (manifest 5): dcp_bundle_uuid: must be a string or null, got int",
        "job 0 (manifest 5): conversion: must be an object, got list",
        "job 0 (manifest 5): files: must be a non-empty list",
    ]


def test_max_jobs():
    assert problems_of([conversion_job()] * 3, max_jobs=2) == [
        "plan has 3 jobs, more than the limit of 2"
    ]


def test_a_plan_beyond_the_job_limit_is_refused_without_reading_its_jobs():
    jobs = [{"not": "a job"}] * (MAX_PLAN_JOBS + 1)
    assert problems_of(jobs) == [
        f"plan has {MAX_PLAN_JOBS + 1} jobs, more than the limit of {MAX_PLAN_JOBS}"
    ]


def test_every_problem_of_every_job_at_once():
    bad_name = with_input_name("../../R2.fastq.gz")
    bad_schema = conversion_job(manifest="m2")
    bad_schema["conversion"]["schema"] = "10xV1"
    bad_url = plain_job(manifest="m3\nINFO forged log line")
    bad_url["files"][0]["cloud_url"] = "file:///etc/shadow"
    bad_url["files"][0]["name"] = "R1.fastq.gz"
    bad_url["files"][1] = {"name": "R2.fastq.gz", "cloud_url": "s3://bkt/R2.fastq.gz"}

    with pytest.raises(PlanError) as raised:
        parse_plan({"jobs": [bad_name, plain_job(manifest="ok"), bad_schema, bad_url]})
    error_text = str(raised.value)

    assert raised.value.problems == [
        "job 0 (manifest 1f2e3d4c): conversion.inputs[1].name: contains '/'",
        "job 2 (manifest m2): conversion.schema: '10xV1' is not supported; expected 10xV2 or 10xV3",
        "job 3 (manifest m3\\nINFO forged log line): manifest_id: contains a control character "
        "(U+000A)",
        "job 3 (manifest m3\\nINFO forged log line): files[0].cloud_url: must be an "
        "s3://bucket/key URL, got 'file:///etc/shadow'",
    ]
    assert error_text.splitlines()[0] == "invalid upload plan, 4 problem(s):"


def test_the_message_of_a_huge_failure_is_bounded_but_problems_are_all_kept():
    with pytest.raises(PlanError) as raised:
        parse_plan([with_input_name("a/b")] * 150)
    assert len(raised.value.problems) > 150
    assert len(str(raised.value).splitlines()) == 102
    assert str(raised.value).splitlines()[-1].startswith("- ... and ")


def test_name_problems_lists_every_reason():
    assert name_problems("fine.bam") == []
    assert name_problems("-a/\\b\n") == [
        "contains '/'",
        "contains '\\\\'",
        "contains a control character (U+000A)",
        "starts with '-' (would read as a command-line option)",
    ]


def _paths(value, path=()):
    """Every (path, value) inside a JSON value, containers included."""
    yield path, value
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in items:
        yield from _paths(child, (*path, key))


def _replaced(value, path, new):
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replaced(value[path[0]], path[1:], new)
    return copy


@pytest.mark.parametrize("junk", [None, 0, 1.5, True, "", [], {}, [None], {"x": []}])
def test_any_value_of_any_type_anywhere_gives_plan_errors_not_crashes(junk):
    """Junk anywhere is a PlanError, or, where the field is optional, a plan whose every value
    the runners use has its type; required fields never take junk."""
    base = {"jobs": [conversion_job(), plain_job()]}
    accepted = []
    for path, _ in list(_paths(base)):
        try:
            plan = parse_plan(_replaced(base, path, junk))
        except PlanError:
            continue
        accepted.append(path)
        for job in plan.jobs:
            strings = [job.dsp_api_url, job.submission_url, job.manifest_id, *job.uploads]
            strings += [value for pair in job.downloads for value in pair]
            assert all(isinstance(value, str) and value for value in strings), (path, job)
    required = {"dsp_api_url", "submission_url", "manifest_id", "name", "cloud_url"}
    assert not [path for path in accepted if path[-1] in required], accepted

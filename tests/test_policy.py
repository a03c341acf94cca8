"""The manifest's `[policy]`: which style licences its jobs may use, where it is recorded and shown."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
import tifffile
from rich.console import Console
from store_fixtures import make_finished_store
from helpers_manifest import STYLES, errors, job, manifest, only_error
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.deliver.export import export_job, provenance_record
from pipeline.deliver.report import render_report, report_command
from pipeline.manifest.load import load_manifest, read_manifest
from pipeline.manifest.specs import Policy
from pipeline.run.store import job_group, job_ids, job_info, open_store

# the styles of helpers_manifest.STYLES are licensed "Public domain (CC0)" (wave) and "Public domain" (kiss)
POLICY = '[policy]\nallowed_licenses = ["public domain (cc0)", "house"]\n'
REFUSED = (
    "style 'kiss': licence 'Public domain' is not allowed by the manifest's [policy] allowed_licenses "
    "(public domain (cc0), house)"
)


def test_without_a_policy_any_licence_goes(ws):
    m = load_manifest(manifest(ws, job() + job(job_id="k", style='"kiss"')))
    assert m.policy is None and [j.id for j in m.jobs] == ["j", "k"]


def test_allowed_licences_match_the_whole_licence_ignoring_case(ws):
    m = load_manifest(manifest(ws, POLICY + job()))
    assert m.policy == Policy(allowed_licenses=("public domain (cc0)", "house"), require_attribution=True)
    assert m.policy.allows("PUBLIC DOMAIN (CC0)") and m.policy.allows("House")
    assert not m.policy.allows("Public domain") and not m.policy.allows("house style")
    assert Policy().allows("anything")


def test_a_disallowed_licence_fails_its_job_naming_style_licence_and_policy(ws):
    path = manifest(ws, POLICY + job() + job(job_id="k", style='"kiss"'))
    problem = only_error(path, item="job 'k'", field="style", contains=REFUSED)
    assert problem.message == REFUSED and problem.job == "k"
    m, _ = read_manifest(path)
    assert [j.id for j in m.jobs] == ["j"]  # the other job is untouched


def test_weft_validate_exits_1_with_the_policy_message(ws):
    path = manifest(ws, POLICY + job(job_id="k", style='"kiss"') + job())
    result = CliRunner().invoke(app, ["validate", str(path)])
    output = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert f"error: {path}: job 'k': field 'style': {REFUSED}" in output and "1 error(s)" in output
    allowed = manifest(ws, POLICY.replace('"house"', '"house", "Public domain"') + job(job_id="k", style='"kiss"'))
    assert CliRunner().invoke(app, ["validate", str(allowed)]).exit_code == 0


def test_every_refused_style_of_a_blend_is_named(ws):
    policy = '[policy]\nallowed_licenses = ["house"]\n'
    path = manifest(ws, policy + job(style='[{style = "wave", weight = 1}, {style = "kiss", weight = 1}]'))
    found = errors(path)
    assert [(p.item, p.field) for p in found] == [("job 'j'", "style")] * 2
    assert [p.message.split(":")[0] for p in found] == ["style 'wave'", "style 'kiss'"]


def test_policy_in_the_styles_toml_of_a_csv_catalogue(ws):
    (ws / "styles.toml").write_text(POLICY + STYLES)
    (ws / "jobs.csv").write_text("id,design,style\na,designs/rose.png,wave\nb,designs/rose.png,kiss\n")
    [problem] = errors(ws / "jobs.csv")
    assert (problem.file, problem.item, problem.field, problem.job) == (str(ws / "jobs.csv"), "row 3, job 'b'",
                                                                       "style", "b")  # fmt: skip
    assert problem.message == REFUSED


@pytest.mark.parametrize(
    ("table", "field", "contains"),
    [
        ('allowed_licences = ["house"]', "allowed_licences", "unknown key (did you mean 'allowed_licenses'?)"),
        ("allowed_licenses = []", "allowed_licenses", "lists no licence, so every job would be refused"),
        ('allowed_licenses = "house"', "allowed_licenses", "must be a list of licence names"),
        ('allowed_licenses = ["house", " "]', "allowed_licenses", "entry 2 must be a non-empty string"),
        ("require_attribution = false", "require_attribution", "cannot be false: every style needs an attribution"),
        ('require_attribution = "yes"', "require_attribution", "must be true or false, got 'yes'"),
    ],
)
def test_policy_mistakes(ws, table, field, contains):
    only_error(manifest(ws, f"[policy]\n{table}\n" + job()), item="[policy]", field=field, contains=contains)


def test_policy_must_be_a_table(ws):
    only_error(manifest(ws, 'policy = "strict"\n' + job()), item=None, field="policy", contains="write [policy]")


def test_require_attribution_keeps_the_usual_message(ws):
    no_attribution = STYLES.replace('attribution = "Gustav Klimt, The Kiss"\n', "")
    for policy in ("", "[policy]\nrequire_attribution = true\n"):
        path = manifest(ws, policy + job(), styles=False)
        path.write_text(path.read_text() + no_attribution)
        only_error(path, item="style 'kiss'", field="attribution",
                   contains="missing: every style needs an attribution (creator, title, year, source)")  # fmt: skip
    stated = manifest(ws, "[policy]\nrequire_attribution = true\n" + job())
    assert load_manifest(stated).policy == Policy(allowed_licenses=None, require_attribution=True)


def test_run_planning_fails_only_the_refused_job(ws, tmp_path):
    from pipeline.run.plan import make_plan

    path = manifest(ws, POLICY + job() + job(job_id="k", style='"kiss"'))
    plan = make_plan(path, store=tmp_path / "out.zarr")
    assert [j.id for j in plan.jobs] == ["j"] and list(plan.invalid) == ["k"]
    assert REFUSED in plan.invalid["k"]


def test_the_policy_is_in_provenance_but_not_in_the_job_key(ws, tmp_path):
    from pipeline.run.cluster import ClusterInfo
    from pipeline.run.plan import make_plan
    from pipeline.run.provenance import job_provenance

    info = ClusterInfo(dashboard=None, workers=1, gpu=False, device="cpu", threads=1, description="test")
    with_policy = make_plan(manifest(ws, POLICY + job(), name="a.toml"), store=tmp_path / "out.zarr")
    without = make_plan(manifest(ws, job(), name="b.toml"), store=tmp_path / "out.zarr")
    [a], [b] = with_policy.jobs, without.jobs
    assert a.key == b.key and a.key
    assert job_provenance(a, info, with_policy)["policy"] == {
        "allowed_licenses": ["public domain (cc0)", "house"], "require_attribution": True, "match": "ignore case",
    }  # fmt: skip
    assert job_provenance(b, info, without)["policy"] is None


def _set_policy(store: Path, policies: dict[str, object]) -> None:
    root = open_store(store, "a")
    for job_id, policy in policies.items():
        job_group(root, job_id).attrs.update({"policy": policy})


def _infos(store: Path) -> list[dict]:
    root = open_store(store, "r")
    return [job_info(root, job_id) for job_id in job_ids(root)]


def _pictures(infos: list[dict]) -> dict:
    return {str(i["job_id"]): {"design": None, "styles": [], "result": None, "preview": None} for i in infos}


def test_the_report_header_shows_the_policy(tmp_path):
    store = make_finished_store(tmp_path)
    infos = _infos(store)
    assert "no licence policy recorded" in render_report(store, infos, _pictures(infos))  # stores from before
    record = Policy(("CC0-1.0", "house <b>")).record()
    _set_policy(store, {"rose": record, "tulip": record})
    page = render_report(store, _infos(store), _pictures(infos))
    assert '<p class="sub policy">licence policy: allowed CC0-1.0, house &lt;b&gt;; attribution required</p>' in page
    _set_policy(store, {"tulip": None})
    page = render_report(store, _infos(store), _pictures(infos))
    assert ("licence policy: allowed CC0-1.0, house &lt;b&gt;; attribution required (jobs rose) · "
            "no licence policy (jobs tulip)") in page  # fmt: skip


def test_the_export_record_copies_the_policy(tmp_path):
    store = make_finished_store(tmp_path)
    record = Policy(("CC0-1.0",)).record()
    _set_policy(store, {"rose": record})
    assert provenance_record(job_info(store, "rose"), dpi=300)["policy"] == record
    assert provenance_record(job_info(store, "tulip"), dpi=300)["policy"] is None
    (tmp_path / "out").mkdir()
    [path] = export_job(store, "rose", tmp_path / "out")
    with tifffile.TiffFile(path) as tif:
        assert json.loads(tif.pages[0].tags["ImageDescription"].value)["policy"] == record


# --- one real run --------------------------------------------------------------------------


@pytest.mark.slow
def test_a_run_fails_the_refused_job_alone_and_records_the_policy(tmp_path):
    from pipeline_helpers import run, write_manifest

    jobs = {
        "tartan": ("designs/royal_stewart_sett.png", "kiss", "block"),
        "strawberry": ("designs/morris_strawberry_thief.jpg", "wave", "half-drop"),
    }
    path = write_manifest(tmp_path, jobs)
    kiss = 'license = "Public domain"\nattribution = "Gustav Klimt'
    text = path.read_text().replace(kiss, kiss.replace("Public domain", "CC-BY-NC-4.0"))
    path.write_text('[policy]\nallowed_licenses = ["public domain", "CC0-1.0"]\n\n' + text)
    store = tmp_path / "out.zarr"
    result = run(path, store, workers=1)
    statuses = {job_id: str(outcome.status) for job_id, outcome in result.outcomes.items()}
    assert statuses == {"tartan": "failed", "strawberry": "done"}
    refused = "style 'kiss': licence 'CC-BY-NC-4.0' is not allowed by the manifest's [policy] allowed_licenses"
    assert refused in (result.outcomes["tartan"].error or "")
    done = job_info(store, "strawberry")
    policy = {"allowed_licenses": ["public domain", "CC0-1.0"], "require_attribution": True, "match": "ignore case"}
    assert done["policy"] == policy
    assert refused in job_info(store, "tartan")["error"]
    out = tmp_path / "report.html"
    report_command(store, out, Console(file=io.StringIO()))
    assert "licence policy: allowed public domain, CC0-1.0; attribution required" in out.read_text()
    assert os.path.getsize(out) > 0

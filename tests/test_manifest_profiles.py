"""Which profile a job stands on: the command line > the job's `profile` > `[defaults]` > top level > default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers_manifest import STYLES, errors, job, load_one, manifest, only_error

from pipeline.errors import ConfigError
from pipeline.manifest.load import load_manifest, read_manifest
from pipeline.settings import load_profile, resolve_settings

PREVIEW = resolve_settings(load_profile("preview"))
PRINT = resolve_settings(load_profile("print"))
DEMO = resolve_settings(load_profile("demo"))
DEFAULT = resolve_settings(load_profile("default"))


def settings_of(path: Path, **kwargs):
    return {spec.id: spec.settings for spec in load_manifest(path, **kwargs).jobs}


def test_profile_in_defaults_is_a_default_not_an_unknown_key(ws):
    path = manifest(ws, '[defaults]\nprofile = "preview"\n' + job())
    assert load_one(path).settings == PREVIEW


def test_which_profile_each_job_stands_on(ws):
    body = (
        'profile = "demo"\n'
        + job(job_id="top")
        + job('profile = "print"', job_id="own")
    )
    assert settings_of(manifest(ws, body)) == {"top": DEMO, "own": PRINT}
    with_defaults = 'profile = "demo"\n[defaults]\nprofile = "preview"\n' + job(job_id="dflt") + job(
        'profile = "print"', job_id="own"
    )
    assert settings_of(manifest(ws, with_defaults)) == {"dflt": PREVIEW, "own": PRINT}
    assert settings_of(manifest(ws, job())) == {"j": DEFAULT}


def test_the_command_line_wins_over_every_profile_the_manifest_names(ws, tmp_path):
    body = 'profile = "demo"\n[defaults]\nprofile = "preview"\n' + job('profile = "print"', job_id="own") + job()
    path = manifest(ws, body)
    assert settings_of(path, profile="demo") == {"own": DEMO, "j": DEMO}
    config = tmp_path / "mine.toml"
    config.write_text('extends = "default"\n[settings]\niterations = 7\n')
    assert {s.iterations for s in settings_of(path, config=config).values()} == {7}


def test_settings_layers_stay_on_top_of_the_jobs_profile(ws):
    body = "[defaults]\niterations = 11\n" + job('profile = "print"') + job('profile = "print"\nscales = 1', job_id="k")
    found = settings_of(manifest(ws, body), cli_settings={"refine_iterations": 5})
    assert found["j"] == PRINT.model_copy(update={"iterations": 11, "refine_iterations": 5})
    assert found["k"] == PRINT.model_copy(update={"iterations": 11, "refine_iterations": 5, "scales": 1})


def test_a_jobs_profile_keys_it_exactly_like_its_settings_written_out(ws):
    from pipeline.run.plan import job_key

    written = "\n".join(f"{name} = {json.dumps(value)}" for name, value in load_profile("preview").items())
    named = load_one(manifest(ws, job('profile = "preview"'), name="named.toml"))
    spelled = load_one(manifest(ws, job(written), name="spelled.toml"))
    assert named.settings == spelled.settings == PREVIEW
    assert named.settings.digest() == spelled.settings.digest() != DEFAULT.digest()
    shas = ("d" * 64, ("s" * 64,), "w" * 64)
    assert job_key(named, shas[0], shas[1], shas[2]) == job_key(spelled, shas[0], shas[1], shas[2])
    plain = load_one(manifest(ws, job(), name="plain.toml"))
    assert job_key(plain, shas[0], shas[1], shas[2]) != job_key(named, shas[0], shas[1], shas[2])


def test_csv_profile_column(ws):
    (ws / "styles.toml").write_text('[defaults]\nprofile = "demo"\n' + STYLES)
    (ws / "jobs.csv").write_text("id,design,style,profile\na,designs/rose.png,wave,preview\nb,designs/rose.png,wave,\n")
    assert settings_of(ws / "jobs.csv") == {"a": PREVIEW, "b": DEMO}


@pytest.mark.parametrize(
    ("body", "item"),
    [
        ('profile = "dmeo"\n' + job(), None),
        ('[defaults]\nprofile = "dmeo"\n' + job(), "[defaults]"),
        (job('profile = "dmeo"'), "job 'j'"),
    ],
)
def test_unknown_profile_names_file_place_and_field(ws, body, item):
    problem = only_error(manifest(ws, body), item=item, field="profile", contains="unknown profile 'dmeo'")
    assert "(did you mean 'demo'?)" in problem.message and "known profiles: " in problem.message
    # named but overridden on the command line: still a mistake in the manifest
    only_error(manifest(ws, body), item=item, field="profile", contains="unknown profile 'dmeo'", profile="demo")


def test_unknown_profile_in_a_csv_row_names_the_row(ws):
    (ws / "styles.toml").write_text(STYLES)
    (ws / "jobs.csv").write_text("id,design,style,profile\na,designs/rose.png,wave,previw\n")
    [problem] = errors(ws / "jobs.csv")
    assert (problem.file, problem.item, problem.field, problem.job) == (str(ws / "jobs.csv"), "row 2, job 'a'",
                                                                       "profile", "a")  # fmt: skip
    assert "unknown profile 'previw' (did you mean 'preview'?)" in problem.message


def test_a_jobs_bad_profile_fails_that_job_alone(ws, tmp_path):
    from pipeline.run.plan import make_plan

    path = manifest(ws, job('profile = "prnt"') + job(job_id="k", style='"kiss"'))
    manifest_, problems = read_manifest(path)
    assert [j.id for j in manifest_.jobs] == ["k"]
    assert [(p.item, p.field, p.job) for p in problems if p.severity == "error"] == [("job 'j'", "profile", "j")]
    plan = make_plan(path, store=tmp_path / "out.zarr")
    assert [j.id for j in plan.jobs] == ["k"] and list(plan.invalid) == ["j"]
    assert "did you mean 'print'?" in plan.invalid["j"]


def test_profile_must_be_a_name(ws):
    only_error(manifest(ws, job("profile = 3")), item="job 'j'", field="profile", contains="unknown profile 3")


def test_errors_of_a_jobs_profile_are_reported_once_in_its_file(ws, tmp_path, monkeypatch):
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "wobbly.toml").write_text("[settings]\nscales = 0\n")
    (configs / "broken.toml").write_text("[settings\n")
    monkeypatch.setenv("WEFT_CONFIG_DIR", str(configs))
    body = job('profile = "wobbly"') + job('profile = "wobbly"', job_id="k") + job('profile = "broken"', job_id="b")
    found = errors(manifest(ws, body))
    assert [(p.file, p.item, p.field) for p in found] == [
        (str(configs / "wobbly.toml"), "[settings]", "scales"),  # once, where it is written
        (str(ws / "m.toml"), "job 'b'", "profile"),  # a profile file that cannot be read: the job that names it
    ]
    assert "invalid TOML" in found[1].message and found[1].job == "b"


def test_a_defaults_error_is_reported_once_whatever_the_profiles(ws):
    body = "[defaults]\niterations = -3\n" + job() + job('profile = "print"', job_id="k") + job(
        'profile = "preview"', job_id="p"
    )
    assert [(p.item, p.field) for p in errors(manifest(ws, body))] == [("[defaults]", "iterations")]


def test_a_bad_command_line_profile_is_still_an_error_of_the_command(ws):
    with pytest.raises(ConfigError, match="known profiles"):
        load_manifest(manifest(ws, job('profile = "print"')), profile="prnt")

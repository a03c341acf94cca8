"""Settings: the shipped profiles, profile files, precedence of the four layers, and the digest."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline.errors import ConfigError
from pipeline.manifest.load import load_manifest
from pipeline.settings import (
    FEEDFORWARD_ONLY,
    LAYOUT_SETTINGS,
    SEPARATION_SETTINGS,
    Settings,
    available_profiles,
    describe_validation_error,
    load_profile,
    resolve_settings,
    settings_digest,
)

REPO = Path(__file__).resolve().parent.parent


def profile(name: str) -> Settings:
    return resolve_settings(load_profile(name))


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder searched first for profiles (``$WEFT_CONFIG_DIR``)."""
    directory = tmp_path / "configs"
    directory.mkdir()
    monkeypatch.setenv("WEFT_CONFIG_DIR", str(directory))
    return directory


def write_profile(directory: Path, name: str, body: str) -> Path:
    path = directory / f"{name}.toml"
    path.write_text(textwrap.dedent(body))
    return path


# --- the shipped profiles ------------------------------------------------------------------


def test_shipped_profiles_are_listed_and_valid():
    assert {"default", "preview", "print", "demo"} <= set(available_profiles())
    loaded = {name: profile(name) for name in ("default", "preview", "print", "demo")}  # each validates
    assert all(type(s) is Settings for s in loaded.values())
    # each file is read for what it says (none silently falls back to another's values)
    assert len({s.digest() for s in loaded.values()}) == 4
    assert loaded["default"] != Settings(coarse_size=loaded["default"].coarse_size + 1)


def test_default_profile_values():
    s = profile("default")
    assert (s.coarse_size, s.scales, s.iterations, s.refine_iterations) == (512, 2, 300, 150)
    assert (s.tile_size, s.halo, s.overlap, s.refine) == ("auto", 64, 32, True)
    model = Settings()
    for name in ("content_weight", "style_weight", "style_layers", "optimizer", "learning_rate"):
        assert getattr(s, name) == getattr(model, name)


def test_preview_is_a_coarse_pass_only():
    s, default = profile("preview"), profile("default")
    assert s.refine is False and s.scales == 1 and s.coarse_size == 256
    assert s.iterations < default.iterations


def test_print_is_full_multiscale():
    s, default = profile("print"), profile("default")
    assert s.scales == 3 and s.refine is True
    assert s.iterations > default.iterations and s.refine_iterations > default.refine_iterations


def test_demo_is_small():
    s = profile("demo")
    assert (s.coarse_size, s.scales, s.tile_size, s.halo, s.overlap) == (128, 1, 128, 32, 16)
    assert s.iterations <= 50 and s.refine_iterations <= 40


# --- profile files -------------------------------------------------------------------------


def test_extends_chains(config_dir):
    write_profile(config_dir, "base", "[settings]\niterations = 11\nhalo = 40\noverlap = 8\n")
    write_profile(config_dir, "middle", 'extends = "base"\n[settings]\niterations = 22\nscales = 3\n')
    write_profile(config_dir, "top", 'extends = "middle"\ndescription = "x"\n[settings]\nscales = 4\n')
    s = profile("top")
    assert (s.iterations, s.scales, s.halo, s.overlap) == (22, 4, 40, 8)


def test_extends_a_shipped_profile(config_dir):
    write_profile(config_dir, "mine", 'extends = "demo"\n[settings]\niterations = 5\n')
    s = profile("mine")
    assert s.iterations == 5 and s.coarse_size == 128


def test_circular_extends(config_dir):
    write_profile(config_dir, "a", 'extends = "b"\n')
    write_profile(config_dir, "b", 'extends = "c"\n')
    write_profile(config_dir, "c", 'extends = "a"\n')
    with pytest.raises(ConfigError, match="circle"):
        load_profile("a")


def test_unknown_profile_lists_known_names():
    with pytest.raises(ConfigError) as info:
        load_profile("prnit")
    message = str(info.value)
    assert "unknown profile 'prnit'" in message
    for name in ("default", "preview", "print", "demo"):
        assert name in message


def test_unknown_setting_key(config_dir):
    write_profile(config_dir, "typo", "[settings]\niteratons = 3\n")
    with pytest.raises(ConfigError, match="unknown setting.*iteratons"):
        load_profile("typo")


def test_unknown_profile_table(config_dir):
    write_profile(config_dir, "odd", "[setting]\niterations = 3\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_profile("odd")


def test_malformed_profile_names_line_and_column(config_dir):
    write_profile(config_dir, "broken", "[settings]\niterations = = 3\n")
    with pytest.raises(ConfigError, match=r"broken.toml: invalid TOML.*line 2, column"):
        load_profile("broken")


def test_config_file_instead_of_a_name(tmp_path):
    path = write_profile(tmp_path, "anywhere", 'extends = "preview"\n[settings]\nseam_fade = 0.2\n')
    s = resolve_settings(load_profile(config=path))
    assert s.seam_fade == 0.2 and s.refine is False


def test_invalid_values_are_described():
    with pytest.raises(ValidationError) as info:
        resolve_settings({"iterations": 0, "halo": 8, "overlap": 16, "bogus": 1})
    described = dict(describe_validation_error(info.value))
    assert "iterations" in described and "bogus" in described
    assert described["bogus"].startswith("unknown setting")


# --- precedence ----------------------------------------------------------------------------


def test_precedence_profile_defaults_job_cli(config_dir, make_image, tmp_path):
    write_profile(config_dir, "layers", "[settings]\niterations = 1\nscales = 1\ncoarse_size = 100\ntv_weight = 0.5\n")
    make_image("d.png", (64, 64))
    make_image("s.png", (64, 64))
    manifest = tmp_path / "m.toml"
    manifest.write_text(
        textwrap.dedent(
            """
            profile = "layers"
            [defaults]
            iterations = 2
            scales = 2
            coarse_size = 200
            [[styles]]
            id = "s"
            path = "s.png"
            license = "CC0"
            attribution = "test"
            [[jobs]]
            id = "j"
            design = "d.png"
            style = "s"
            iterations = 3
            scales = 3
            [[jobs]]
            id = "plain"
            design = "d.png"
            style = "s"
            """
        )
    )
    jobs = {j.id: j.settings for j in load_manifest(manifest, cli_settings={"iterations": 4, "scales": None}).jobs}
    s = jobs["j"]
    assert s.iterations == 4  # CLI beats job, defaults and profile
    assert s.scales == 3  # job beats defaults and profile (a CLI flag left at None does not count)
    assert s.coarse_size == 200  # defaults beat profile
    assert s.tv_weight == 0.5  # profile beats the model defaults
    assert (jobs["plain"].iterations, jobs["plain"].scales) == (4, 2)
    # --profile on the command line beats the manifest's profile
    assert load_manifest(manifest, profile="demo").jobs[1].settings.tile_size == 128


# --- digest --------------------------------------------------------------------------------

# A different valid value for every field; a new Settings field must be added here.
ALTERNATIVES = {
    "coarse_size": 384,
    "scales": 3,
    "scale_factor": 1.5,
    "refine": False,
    "iterations": 301,
    "refine_iterations": 151,
    "optimizer": "adam",
    "learning_rate": 0.5,
    "content_layer": "relu3_1",
    "content_weight": 2.0,
    "style_layers": ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2"),
    "style_layer_weights": (1.0, 1.0, 1.0, 1.0, 0.5),
    "style_weight": 3.0,
    "tv_weight": 0.1,
    "style_scale": 0.5,
    "preserve_colors": True,
    "init": "noise",
    "pooling": "avg",
    "padding": "zeros",
    "seam_fade": 0.1,
    "seam_content": 0.5,
    "style_max_size": 512,
    "style_span_cm": 20.0,
    "crop_to_repeat": True,
    "tile_size": 256,
    "halo": 48,
    "overlap": 16,
    "precision": "fp32",
    "weights": "torchvision",
    "engine": "feedforward",
    "ff_width": 8,
    "ff_blocks": 3,
    "ff_tile_size": 512,
    "polish_iterations": 5,
    "train_steps": 7,
    "train_batch": 3,
    "train_crop": 64,
    "train_scales": (1.0, 2.0),
    "train_lr": 2e-3,
    "train_seed": 1,
    "train_checkpoint_every": 9,
    "train_threads": 1,
    "coarse_threads": 1,
    "tile_threads": 2,
}
#: The separation's settings: a different valid value each, none of which may change the digest.
SEPARATION_ALTERNATIVES = {"colors": 4, "palette": "#ff0000,#00ff00", "min_area_mm2": 0.5}
#: Settings that decide a layout, not pixels: keyed through the layout they give (tests/test_tile_sizing.py).
LAYOUT_ALTERNATIVES = {"worker_memory": "3 GiB"}


def test_digest_equal_for_equal_settings(config_dir):
    # Two independent constructions of the same values: keyword order, types and source differ.
    write_profile(config_dir, "same", "[settings]\nhalo = 48\niterations = 300\ncoarse_size = 512.0\n")
    a = resolve_settings(load_profile("same"))
    b = Settings(coarse_size=512, iterations=300, halo=48)
    assert a == b and hash(a) == hash(b)
    assert settings_digest(a) == settings_digest(b) == b.digest()
    assert len(a.digest()) == 64


def test_digest_changes_when_any_field_changes():
    every = set(ALTERNATIVES) | set(SEPARATION_ALTERNATIVES) | set(LAYOUT_ALTERNATIVES)
    assert every == set(Settings.model_fields), "add it to ALTERNATIVES"
    assert set(SEPARATION_ALTERNATIVES) == SEPARATION_SETTINGS and set(LAYOUT_ALTERNATIVES) == LAYOUT_SETTINGS
    digests = {Settings().digest(), Settings(engine="feedforward").digest()}
    for name, value in ALTERNATIVES.items():
        # a feed-forward-only setting moves the digest of a feed-forward job (an optimisation job ignores it)
        base = Settings(engine="feedforward") if name in FEEDFORWARD_ONLY and name != "engine" else Settings()
        changed = base.model_copy(update={name: value})
        Settings(**changed.model_dump())  # the alternative is a valid value
        assert getattr(changed, name) != getattr(base, name)
        digests.add(changed.digest())
    assert len(digests) == len(ALTERNATIVES) + 1  # "engine" itself gives the feed-forward base's digest
    plain = Settings()
    for name, value in LAYOUT_ALTERNATIVES.items():  # the layout is keyed, not the budget
        assert Settings(**{**plain.model_dump(), name: value}).digest() == plain.digest()
    for name, value in SEPARATION_ALTERNATIVES.items():  # the separation keys itself; the image's key stays
        update = {name: value, "colors": 2} if name == "palette" else {name: value}
        assert Settings(**{**plain.model_dump(), **update}).digest() == plain.digest()


def test_digest_stable_across_processes():
    script = (
        "from pipeline.settings import load_profile, resolve_settings\n"
        "print(resolve_settings(load_profile('demo')).digest())\n"
        "print(resolve_settings({'halo': 48, 'style_layers': ['relu1_1']*1, 'style_layer_weights': [2]}).digest())"
    )
    other = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
    ).stdout.split()
    here = [
        profile("demo").digest(),
        resolve_settings({"halo": 48, "style_layers": ("relu1_1",), "style_layer_weights": (2.0,)}).digest(),
    ]
    assert other == here


def test_settings_are_frozen():
    s = Settings()
    with pytest.raises(ValidationError):
        s.iterations = 5  # type: ignore[misc]


def test_settings_reference_lists_every_setting():
    reference = (REPO / "docs" / "settings.md").read_text()
    missing = [name for name in Settings.model_fields if f"| `{name}` |" not in reference]
    assert not missing, f"document these settings in docs/settings.md: {missing}"


def test_settings_table_in_the_docs_is_up_to_date() -> None:
    """docs/settings.md is generated from the model: a changed default must regenerate it."""
    import subprocess
    import sys

    check = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "settings_table.py"), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout


DIGEST_BEFORE_STYLE_SPAN = "d5ec596da76f5a5bf86b0607a12a6832b8b8432841267d0e6f63189fdbfc9a36"


def test_a_new_setting_at_its_default_leaves_existing_digests_alone():
    # the digest of Settings() before style_span_cm existed (main at d024064): job keys of jobs that
    # do not use it must not change
    assert Settings().digest() == DIGEST_BEFORE_STYLE_SPAN
    assert Settings(style_span_cm=20).digest() != DIGEST_BEFORE_STYLE_SPAN

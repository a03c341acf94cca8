"""Issue 7: a nightly batch that runs unattended must say exactly what went wrong, keep going with
everything else, and never lose or corrupt finished work.

Everything here is real: files generated in the test, ``weft run`` as a real process (or
in-process with a real ``LocalCluster`` of worker processes), real signals, a real full disk
(a small tmpfs, where this machine lets us mount one). Runs that are interrupted, refused or
starved of disk are compared byte for byte with the session's uninterrupted ``baseline`` run
(conftest.py), or with a run of only the good jobs.
"""

from __future__ import annotations

import ast
import errno
import io
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psutil
import pytest
import zarr
from PIL import Image
from pipeline_helpers import ROOT, pixels, run, start_weft, tiles_done, tree, wait_for
from rich.console import Console
from store_fixtures import FixtureJob, make_finished_store, textile_pattern
from typer.testing import CliRunner

from pipeline.run import lock as run_lock
from pipeline.run import store
from pipeline.cli import app
from pipeline.errors import StoreError
from pipeline.run.interrupts import store_fault
from pipeline.run.outcome import RunResult

PACKAGE = ROOT / "pipeline"

#: Coarse pass only (no tiles), tiny and quick: for runs of many jobs.
COARSE_PROFILE = """\
extends = "demo"
description = "tests: coarse pass only, 2 steps"

[settings]
coarse_size = 48
scales = 1
iterations = 2
refine = false
tile_size = 64
halo = 16
overlap = 8
"""

PALETTES = ("rose", "indigo", "ochre", "teal")


# --- helpers -----------------------------------------------------------------------------------


def save(path: Path, pixels_: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels_).save(path)
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_bomb(path: Path, width: int, height: int) -> Path:
    """A 100-byte PNG that declares width x height RGB pixels (decoding it would allocate them all)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + _png_chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def coarse_manifest(folder: Path, jobs: list[str], *, styles: int = 2, head: str = "", name: str = "m.toml") -> Path:
    """A manifest of tiny coarse-only jobs over generated designs and styles.

    ``jobs`` are lines ``id design style size``; designs not yet present are generated.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "coarse.toml").write_text(COARSE_PROFILE)
    lines = [head]
    for index in range(styles):
        style = folder / "styles" / f"s{index}.png"
        if not style.exists():
            save(style, textile_pattern(64, 64, PALETTES[index % 4], seed=100 + index))
        lines.append(f'[[styles]]\nid = "s{index}"\npath = "styles/s{index}.png"\nlicense = "CC0"\n'
                     f'attribution = "generated pattern {index}"\n')  # fmt: skip
    for line in jobs:
        job_id, design, style, size = line.split()
        if design.startswith("designs/d") and not (folder / design).exists():
            number = int(design.removeprefix("designs/d").removesuffix(".png"))
            save(folder / design, textile_pattern(64, 64, PALETTES[number % 4], seed=number))
        lines.append(f'[[jobs]]\nid = "{job_id}"\ndesign = "{design}"\nstyle = "{style}"\nsize = {size}\nseed = 5\n')
    path = folder / name
    path.write_text("\n".join(lines))
    return path


def weft(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The real ``weft`` command in a subprocess; stdout and stderr together, wide enough not to wrap."""
    command = [str(Path(sys.executable).with_name("weft")), *args]
    env = {**os.environ, "COLUMNS": "250"}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


def invoke(*args: str) -> tuple[int, str]:
    """The ``weft`` CLI in this process (for commands that start no cluster); output with whitespace collapsed."""
    import pipeline.cli as cli

    saved = cli.out, cli.console
    cli.out, cli.console = Console(width=250), Console(stderr=True, width=250)  # no wrapping inside long paths
    try:
        result = CliRunner().invoke(app, list(args))
    finally:
        cli.out, cli.console = saved
    return result.exit_code, flat(result.output)


def flat(text: str) -> str:
    return " ".join(text.split())


def statuses(path: Path) -> dict[str, str]:
    root = zarr.open_group(str(path), mode="r")
    return {job_id: root["jobs"][job_id].attrs["status"] for job_id in root["jobs"]}


def dead_pid() -> int:
    """The pid of a process that has just exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def family(pid: int) -> list[psutil.Process]:
    process = psutil.Process(pid)
    return [process, *process.children(recursive=True)]


def assert_all_gone(processes: list[psutil.Process], timeout: float = 20.0) -> None:
    """No process of ``processes`` is left running (zombies awaiting their reaper count as gone)."""

    def gone() -> bool:
        for process in processes:
            try:
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    return False
            except psutil.NoSuchProcess:
                continue
        return True

    wait_for(gone, timeout, "the run's processes to exit")


def copy_store(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


# --- 1. bad images through `weft run`, and the "done when" run ---------------------------------

GOOD = ["rose designs/d1.png s0 48", "iris designs/d2.png s1 48", "fern designs/d3.png s0 [48,32]",
        "lily designs/d4.png s1 32", "moss designs/d5.png s0 48"]  # fmt: skip
BROKEN = {  # job -> (manifest line, what its reason must say besides its file and id)
    "missing": ("missing designs/nowhere.png s0 48", "file not found"),
    "notes": ("notes designs/notes.png s0 48", "not an image: the file contains text"),
    "bomb": ("bomb designs/bomb.png s1 48", "above the input limit"),
    "cut": ("cut designs/cut.png s1 48", "cannot decode (truncated or corrupt file?)"),
    "outside": ("outside ../outside.png s0 48", "points outside the manifest folder"),
}
LIMITS = "[limits]\nmax_input_pixels = 1_000_000\n"


def test_five_good_and_five_broken_jobs(tmp_path: Path) -> None:
    """The good jobs end byte-identical to a run of only them; each broken one fails alone, with its file,
    its id and its reason in the summary, in the store and in `weft status`; exit 1."""
    folder = tmp_path / "catalogue"
    (folder / "designs").mkdir(parents=True)
    (folder / "designs" / "notes.png").write_text("Rose, 3 colourways; see the Friday email.\n")
    write_bomb(folder / "designs" / "bomb.png", 5_000, 5_000)  # 25 MP declared, limit 1 MP: never allocated
    cut = save(folder / "designs" / "cut.png", np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8))
    cut.write_bytes(cut.read_bytes()[:3000])  # header intact: only decoding finds out
    save(tmp_path / "outside.png", textile_pattern(64, 64))  # exists, but outside the manifest's folder
    good_only = coarse_manifest(folder, GOOD, head=LIMITS, name="good.toml")
    mixed = coarse_manifest(folder, GOOD[:2] + [line for line, _ in BROKEN.values()] + GOOD[2:], head=LIMITS)

    mixed_store = tmp_path / "mixed.zarr"
    finished = weft("run", str(mixed), "--store", str(mixed_store), "--config", str(folder / "coarse.toml"),
                    "--workers", "2", "--device", "cpu")  # fmt: skip
    output = finished.stdout + finished.stderr
    assert finished.returncode == 1, output
    assert "Traceback" not in output
    reference = tmp_path / "good.zarr"
    assert run(good_only, reference, config=folder / "coarse.toml").exit_code == 0

    assert statuses(mixed_store) == {**{line.split()[0]: "done" for line in GOOD}, **dict.fromkeys(BROKEN, "failed")}
    expected = pixels(reference)
    assert expected and {k: v for k, v in pixels(mixed_store).items() if k in expected} == expected
    summary = summary_rows(output)
    root = zarr.open_group(str(mixed_store), mode="r")
    for job_id, (line, reason) in BROKEN.items():
        file = line.split()[1].split("/")[-1]
        recorded = root["jobs"][job_id].attrs["error"]
        assert summary[job_id]["status"] == "failed"
        for text in (file, f"job '{job_id}'", reason):
            assert text in flat(recorded), (job_id, text, recorded)
            assert text in summary[job_id]["error"], (job_id, text, summary[job_id])
    code, status_output = invoke("status", str(mixed_store))
    assert code == 1 and "5 done, 5 failed" in status_output
    for job_id in BROKEN:
        assert f"failed {job_id}: " in status_output


def test_every_broken_job_fails_alone_without_starting_a_cluster(tmp_path: Path) -> None:
    """Job-level problems (absurd size, bad id, duplicate id, undeclared style, ...) fail their job alone:
    recorded in the store, summarised, exit 1; a run with nothing left to do starts no cluster."""
    folder = tmp_path / "m"
    path = coarse_manifest(
        folder,
        ["huge designs/d1.png s0 [100000,100000]", "typo designs/d1.png s9 48", "twice designs/d2.png s0 48",
         "twice designs/d3.png s1 48"],
    )  # fmt: skip
    path.write_text(path.read_text() + '\n[[jobs]]\nid = "bad id!"\ndesign = "designs/d1.png"\nstyle = "s0"\n')
    target = tmp_path / "out.zarr"
    code, output = invoke("run", str(path), "--store", str(target), "--config", str(folder / "coarse.toml"))
    assert code == 1, output
    assert "cluster:" not in output  # nothing to compute, nothing started
    recorded = {job_id: root_error for job_id, root_error in _errors(target).items()}
    assert set(recorded) == {"huge", "typo", "twice"}  # 'bad id!' cannot name a folder: summary only
    assert "above the limit of 400 MP" in recorded["huge"]
    assert "style 's9' is not declared" in recorded["typo"]
    assert "duplicate job id 'twice'" in recorded["twice"]  # neither entry runs: which one was meant?
    assert "job 'bad id!'" in output and "not recorded in the store" in output


def summary_rows(output: str) -> dict[str, dict[str, str]]:
    """The run's summary table as {job: {column: text}}, cells that rich wrapped over lines joined again."""
    lines = output[output.index("summary") :].splitlines()
    header = [cell.strip() for cell in next(line for line in lines if line.startswith("┃")).strip("┃").split("┃")]
    rows: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in lines:
        if not line.startswith("│"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        if cells[0]:
            current = rows.setdefault(cells[0], dict.fromkeys(header, ""))
        assert current is not None
        for name, cell in zip(header, cells):
            current[name] = f"{current[name]} {cell}".strip() if cell else current[name]
    return rows


def _errors(path: Path) -> dict[str, str]:
    root = zarr.open_group(str(path), mode="r")
    return {j: root["jobs"][j].attrs["error"] for j in root["jobs"] if root["jobs"][j].attrs["status"] == "failed"}


# --- 2. structural manifest and config errors stop the run before the store is touched ----------


def _structural(folder: Path, case: str) -> tuple[Path, list[str], str]:
    """(manifest, extra options, what the error must say) for one kind of run-stopping mistake."""
    path = coarse_manifest(folder, ["rose designs/d1.png s0 48"])
    text = path.read_text()
    if case == "unknown profile (option)":
        return path, ["--profile", "dmeo"], "known profiles"
    if case == "unknown profile (manifest)":
        path.write_text('profile = "prnt"\n' + text)
        return path, [], "unknown profile 'prnt' (did you mean 'print'?)"
    if case == "malformed TOML":
        path.write_text(text + '\n[[jobs]]\nid = "x"\ndesign = designs/d1.png\n')
        return path, [], "invalid TOML"
    if case == "CSV broken row":
        (folder / "styles.toml").write_text(text.split("[[jobs]]")[0])
        csv = folder / "jobs.csv"
        csv.write_text("id,design,style,size\nrose,designs/d1.png,s0,48\niris,designs/d1.png,s0,48,extra\n")
        return csv, [], "row 3: has 5 cells but the header has 4"
    if case == "style outside the folder":
        shutil.copy(folder / "styles" / "s0.png", folder.parent / "s0.png")
        path.write_text(text.replace('path = "styles/s0.png"', 'path = "../s0.png"'))
        return path, [], "'../s0.png' points outside the manifest folder"
    if case == "unknown --only":
        return path, ["--only", "nosuchjob"], "--only: no job 'nosuchjob'"
    raise AssertionError(case)


STRUCTURAL = ["unknown profile (option)", "unknown profile (manifest)", "malformed TOML", "CSV broken row",
              "style outside the folder", "unknown --only"]  # fmt: skip


@pytest.mark.parametrize("case", STRUCTURAL)
def test_a_structural_error_stops_the_run_before_the_store_is_touched(tmp_path: Path, case: str) -> None:
    path, extra, message = _structural(tmp_path / "m", case)
    existing = make_finished_store(tmp_path, [FixtureJob("rose")])
    before = tree(existing)
    config = [] if "--profile" in extra else ["--config", str(tmp_path / "m" / "coarse.toml")]
    for target in (tmp_path / "new.zarr", existing):
        code, output = invoke("run", str(path), "--store", str(target), *config, *extra)
        assert code == 1, output
        assert message in output, output
        assert "Traceback" not in output
    assert not (tmp_path / "new.zarr").exists()
    assert tree(existing) == before


def test_malformed_toml_names_line_and_column_through_weft_run(tmp_path: Path) -> None:
    path, _, _ = _structural(tmp_path / "m", "malformed TOML")
    code, output = invoke("run", str(path), "--store", str(tmp_path / "s.zarr"))
    line = path.read_text().splitlines().index("design = designs/d1.png") + 1
    assert code == 1 and f"line {line}, column 10" in output, output


# --- 3. untrusted files ------------------------------------------------------------------------


def _calls(tree_: ast.AST) -> list[ast.Call]:
    return [node for node in ast.walk(tree_) if isinstance(node, ast.Call)]


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def test_no_pickle_and_torch_load_only_with_weights_only() -> None:
    """An AST scan of the package: the only deserialiser of files is torch.load(weights_only=True)."""
    forbidden_modules = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "marshal", "shelve", "joblib", "yaml"}
    forbidden_calls = {"eval", "exec", "compile", "__import__", "pickle.load", "pickle.loads", "torch.jit.load"}
    problems, torch_loads = [], 0
    for path in sorted(PACKAGE.rglob("*.py")):
        source = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(source):
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.module or "").split(".")[0]]
            else:
                continue
            problems += [f"{path.name}:{node.lineno}: imports {n}" for n in names if n in forbidden_modules]
        for call in _calls(source):
            name = _dotted(call.func)
            keywords = {k.arg: k.value for k in call.keywords}
            if name in forbidden_calls:
                problems.append(f"{path.name}:{call.lineno}: calls {name}")
            if name == "torch.load" or name.endswith(".torch.load"):
                torch_loads += 1
                flag = keywords.get("weights_only")
                if not (isinstance(flag, ast.Constant) and flag.value is True):
                    problems.append(f"{path.name}:{call.lineno}: torch.load without weights_only=True")
            if name in {"np.load", "numpy.load"}:
                flag = keywords.get("allow_pickle")
                if flag is not None and not (isinstance(flag, ast.Constant) and flag.value is False):
                    problems.append(f"{path.name}:{call.lineno}: np.load with allow_pickle")
    assert problems == []
    assert torch_loads == 1  # weights.py: the scan does see it


def test_store_attributes_are_shown_as_text_never_run(tmp_path: Path) -> None:
    """Every text attribute `weft status` and `weft report` show holds code and markup: it is printed, not run."""
    marker = tmp_path / "PWNED"
    payload = f"__import__('os').system('touch {marker}') {{{{7*7}}}} <script>alert(1)</script> [bold]x[/bold]"
    target = make_finished_store(tmp_path, [FixtureJob("ok"), FixtureJob("bad", status="failed", error="x")],
                                 pyramid=True)  # fmt: skip
    root = zarr.open_group(str(target), mode="r+")

    def poison(value: object) -> object:
        if isinstance(value, dict):
            return {k: poison(v) for k, v in value.items()}
        if isinstance(value, list):
            return [poison(v) for v in value]
        return payload if isinstance(value, str) or value is None else value

    for job_id in root["jobs"]:
        attrs = dict(root["jobs"][job_id].attrs)
        root["jobs"][job_id].attrs.update({k: v if k in {"levels", "job_id"} else poison(v) for k, v in attrs.items()})
    status_run = weft("status", str(target))
    report_run = weft("report", str(target), "--out", str(tmp_path / "report.html"))
    assert not marker.exists()
    assert status_run.returncode == 0, status_run.stderr  # the status itself is poisoned: not "failed"
    assert "__import__('os').system(" in status_run.stdout and "[bold]x[/bold]" in status_run.stdout
    assert report_run.returncode == 0, report_run.stderr
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "__import__(&#x27;os&#x27;).system(" in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" not in html


def test_wrongly_typed_numbers_in_attributes_are_shown_not_crashed_on(tmp_path: Path) -> None:
    """Text where a number belongs is shown as text; a number column it cannot fill is left empty."""
    target = make_finished_store(tmp_path, [FixtureJob("ok"), FixtureJob("good")])
    root = zarr.open_group(str(target), mode="r+")
    root["jobs"]["ok"].attrs.update(
        {"width": "96; rm -rf /", "dpi": "300", "timings": {"seconds": "12"}, "seams": {"repeat": "1.0"}}
    )
    status_run = weft("status", str(target))
    assert status_run.returncode == 0 and status_run.stderr == "", status_run.stderr  # no traceback
    rows = {line.split()[0]: line.split() for line in status_run.stdout.splitlines() if line.split()[:1] in (["ok"], ["good"])}
    # job, status, tiles, size px (the text as it is); no cm, seconds or seams: "300", "12", "1.0" are not numbers
    assert rows["ok"] == ["ok", "done", "8/8", "96;", "rm", "-rf", "/x64"]
    # the same job with numbers fills every column
    assert rows["good"] == ["good", "done", "8/8", "96x64", "0.8x0.5", "12.5", "1.01", "/", "1.04"]
    assert "2 done" in status_run.stdout

    report_run = weft("report", str(target), "--out", str(tmp_path / "r.html"))
    assert report_run.returncode == 0 and report_run.stderr == "", report_run.stderr
    assert f"wrote {tmp_path / 'r.html'} (2 job(s)" in flat(report_run.stdout)
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    card = html[html.index('id="job-ok"') :]
    card = card[: card.index("</article>")]
    assert "<dt>Size</dt><dd>96; rm -rf / × 64 px</dd>" in card
    assert "<dt>Print size</dt><dd>–</dd>" in card and "<dt>Time</dt><dd>–</dd>" in card
    assert ('<dt>Seams</dt><dd><span class="na">–</span> repeat · <span class="na">–</span> internal · '
            '<span class="na">–</span> frame</dd>') in card


# --- 4. crashes and faults: the store lock through `weft run` ---------------------------------


def _lock(target: Path, **fields: object) -> dict[str, object]:
    info = {"pid": 4242, "host": "weft-node-17", "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": "weft run nightly.toml --store /shared/catalogue.zarr", "token": "f" * 32, **fields}  # fmt: skip
    (target / run_lock.LOCK_NAME).write_text(json.dumps(info))
    return info


def test_lock_of_a_run_that_died_on_this_host_is_taken_over_with_a_note(baseline, tmp_path: Path) -> None:
    manifest, source, _ = baseline
    target = copy_store(source, tmp_path / "copy.zarr")
    pid = dead_pid()
    _lock(target, pid=pid, host=socket.gethostname(), command="weft run killed.toml")
    code, output = invoke("run", str(manifest), "--store", str(target), "--config", str(manifest.parent / "tiny.toml"))
    assert code == 0, output  # every job was already done: nothing to compute, but the lock was checked
    assert f"note: the previous run (pid {pid}," in output and "ended without releasing the store" in output
    assert run_lock.lock_info(target) is None


@pytest.mark.parametrize("age_hours", [0, 30])
def test_lock_from_another_host_is_refused_with_the_unlock_hint(baseline, tmp_path: Path, age_hours: int) -> None:
    manifest, source, _ = baseline
    target = copy_store(source, tmp_path / "copy.zarr")
    started = (datetime.now(UTC) - timedelta(hours=age_hours)).isoformat(timespec="seconds")
    _lock(target, started=started)
    before = tree(target)
    config = ["--config", str(manifest.parent / "tiny.toml")]
    code, output = invoke("run", str(manifest), "--store", str(target), *config)
    assert code == 1
    assert "pid 4242 on host weft-node-17" in output and "weft run nightly.toml" in output
    assert f"`weft unlock {target}`" in output
    assert ("stale lock" in output) == (age_hours > 24)
    assert tree(target) == before  # refused before anything was written

    code, unlocked = invoke("unlock", str(target))
    assert code == 0 and "removed the lock" in unlocked
    code, output = invoke("run", str(manifest), "--store", str(target), *config)
    assert code == 0, output


# --- 4. crashes and faults: Ctrl-C, SIGTERM, a second run, a full disk ------------------------


def test_the_workers_a_run_starts_ignore_ctrl_c_and_close_quietly(tmp_path: Path, monkeypatch) -> None:
    """The plugins are on the run's real workers while it computes (their effect: test_closing_noise.py, Ctrl-C below)."""
    from pipeline.run import execute as run_execute

    seen: dict[str, list[str]] = {}
    follow = run_execute._follow

    def look_then_follow(client, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202 - the real call's
        seen.update(client.run(lambda dask_worker: sorted(dask_worker.plugins)))
        return follow(client, *args, **kwargs)

    monkeypatch.setattr(run_execute, "_follow", look_then_follow)
    manifest = coarse_manifest(tmp_path / "catalogue", GOOD[:1])
    result = run(manifest, tmp_path / "s.zarr", workers=1, config=manifest.parent / "coarse.toml")
    assert result.exit_code == 0
    assert len(seen) == 1 and {"weft-ignore-interrupts", "weft-quiet-closing"} <= set(*seen.values())


def test_ctrl_c_stops_cleanly_and_the_rerun_resumes_while_a_second_run_is_refused(baseline, tmp_path: Path) -> None:
    manifest, reference, _ = baseline
    target = tmp_path / "interrupted.zarr"
    process = start_weft(manifest, target)
    try:
        wait_for(lambda: tiles_done(target) >= 1)
        everyone = family(process.pid)  # weft (with the scheduler and nannies inside) and its worker processes
        assert len(everyone) >= 3
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    text = output.decode(errors="replace")
    assert process.returncode == 130, text
    assert "Traceback" not in text
    assert "interrupted: finished tiles are kept" in text and "store is unlocked" in text
    assert f"To resume, run the same command again: weft run {manifest} --store {target}" in flat(text)
    assert run_lock.lock_info(target) is None
    assert_all_gone(everyone)
    assert tiles_done(target) < 12, "the run finished before it could be interrupted"
    assert "running" not in statuses(target).values()  # interrupted jobs are pending again

    resumed = start_weft(manifest, target)
    try:
        wait_for(lambda: (run_lock.lock_info(target) or {}).get("pid") == resumed.pid, what="the resumed run's lock")
        second = start_weft(manifest, target)
        refused, _ = second.communicate(timeout=120)
        resumed_output, _ = resumed.communicate(timeout=300)
    finally:
        for proc in (resumed, second):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    refusal = flat(refused.decode(errors="replace"))
    assert second.returncode == 1, refusal
    assert f"is being written by pid {resumed.pid} on host {socket.gethostname()}" in refusal
    assert f"(command: weft run {manifest} --store {target}" in refusal
    assert resumed.returncode == 0, resumed_output.decode(errors="replace")
    assert pixels(target) == pixels(reference)
    assert run_lock.lock_info(target) is None


def test_sigterm_from_a_batch_scheduler_stops_cleanly_and_releases_the_lock(baseline, tmp_path: Path) -> None:
    manifest, _, _ = baseline
    target = tmp_path / "terminated.zarr"
    process = start_weft(manifest, target)
    try:
        wait_for(lambda: tiles_done(target) >= 1)
        everyone = family(process.pid)
        os.killpg(process.pid, signal.SIGTERM)  # scancel / a time limit: every process of the job step
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    text = output.decode(errors="replace")
    assert process.returncode == 143, text
    assert "stopped by SIGTERM" in text and "To resume, run the same command again" in text
    assert run_lock.lock_info(target) is None  # so tomorrow's run, on any node, is not refused
    assert_all_gone(everyone)


@pytest.fixture
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real 8 MB file system (tmpfs) to fill up; skipped where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a small tmpfs (a real ENOSPC)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the file system is full; returns it (delete it to free the space)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError as error:
        assert error.errno == errno.ENOSPC
    try:
        while True:
            os.write(fd, b"\0" * 512)
    except OSError:
        pass
    os.close(fd)
    return filler


def assert_done_means_written(target: Path, reference: Path) -> int:
    """Every done flag of every prepared job vouches for data equal to the uninterrupted run's; returns the count."""
    mine, theirs = zarr.open_group(str(target), mode="r"), zarr.open_group(str(reference), mode="r")
    checked = 0
    for job_id in mine["jobs"]:
        job = mine["jobs"][job_id]
        if not job.attrs.get("job_key"):
            continue  # preparation never finished: the next run recreates it
        for position, level in enumerate(job.attrs["levels"]):
            final = position == len(job.attrs["levels"]) - 1
            folder = f"jobs/{job_id}" if final else f"jobs/{job_id}/levels/{level['index']}"
            done, core = mine[f"{folder}/done"][...], level["core"]
            for row, col in zip(*np.nonzero(done)):
                window = (slice(row * core, (row + 1) * core), slice(col * core, (col + 1) * core))
                assert np.array_equal(mine[f"{folder}/image"][window], theirs[f"{folder}/image"][window])
                checked += 1
            if level["tiled"]:
                tiles = f"jobs/{job_id}/levels/{level['index']}"
                for row, col in zip(*np.nonzero(mine[f"{tiles}/tiles_done"][...])):
                    assert np.array_equal(mine[f"{tiles}/tiles"][row, col], theirs[f"{tiles}/tiles"][row, col])
                    checked += 1
    return checked


def test_a_full_disk_stops_the_run_with_a_clear_error_and_nothing_false_is_marked_done(
    baseline, small_disk: Path, tmp_path: Path
) -> None:
    manifest, reference, _ = baseline
    target = small_disk / "catalogue.zarr"
    process = start_weft(manifest, target, "--only", "tartan")  # one job (4 tiles) is enough, and quicker
    try:
        wait_for(lambda: tiles_done(target) >= 1)
        filler = fill(small_disk)
        output, _ = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    text = flat(output.decode(errors="replace"))
    assert process.returncode == 1, text
    assert f"error: cannot write to store {target}: No space left on device" in text
    assert "run the same command again to resume" in text
    assert "Traceback (most recent call last)" not in text
    assert run_lock.lock_info(target) is None
    assert assert_done_means_written(target, reference) >= 1
    assert tiles_done(target) < 4, "the job finished before the disk was full"

    filler.unlink()  # space again: the same command resumes and ends byte-identical
    assert run(manifest, target, only=("tartan",)).exit_code == 0
    assert pixels(target) == {k: v for k, v in pixels(reference).items() if k.startswith("tartan/")}

    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)  # and now unwritable
    code, refused = invoke("run", str(manifest), "--store", str(target), "--force",
                           "--config", str(manifest.parent / "tiny.toml"))  # fmt: skip
    assert code == 1 and f"cannot write to store {target}: its file system is mounted read-only" in refused


def test_a_failed_chunk_write_leaves_its_done_flag_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same guarantee without a mount: ENOSPC injected into zarr's file writes, per kind of object."""
    import zarr.storage._local as local

    from pipeline.run.layout import LevelLayout

    from pipeline.run.store import chunk_done, prepare_job, tile_done, write_chunk, write_tile_window

    root = store.open_store(tmp_path / "s.zarr", "a")
    layout = LevelLayout(0, 64, 64, core=32, overlap=4, tiled=True)
    prepare_job(root, "j", job_key="k", provenance={}, levels=[layout], thumbnails={})
    real_put = local._put

    def full_for(part: str):  # type: ignore[no-untyped-def]
        def put(path: Path, value, exclusive: bool = False):  # type: ignore[no-untyped-def]
            if part in path.as_posix():
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_put(path, value, exclusive=exclusive)

        return put

    window = np.full((40, 40, 3), 7, np.uint8)
    monkeypatch.setattr(local, "_put", full_for("/levels/0/tiles/c/"))
    with pytest.raises(OSError) as error:
        write_tile_window(tmp_path / "s.zarr", "j", 0, 0, 1, window)
    assert "No space left on device" in str(store_fault(tmp_path / "s.zarr", error.value))
    assert not tile_done(tmp_path / "s.zarr", "j", 0, 0, 1)
    monkeypatch.setattr(local, "_put", full_for("/image/c/"))
    with pytest.raises(OSError):
        write_chunk(tmp_path / "s.zarr", "j", 0, 1, 0, np.full((32, 32, 3), 9, np.uint8))
    assert not chunk_done(tmp_path / "s.zarr", "j", 0, 1, 0)
    assert not list((tmp_path / "s.zarr").rglob("*.partial")), "no temporary file is left behind"
    monkeypatch.setattr(local, "_put", real_put)
    write_tile_window(tmp_path / "s.zarr", "j", 0, 0, 1, window)
    assert tile_done(tmp_path / "s.zarr", "j", 0, 0, 1)


def test_only_errors_of_the_store_itself_stop_a_run() -> None:
    full = store_fault("/s.zarr", OSError(errno.ENOSPC, "No space left on device"))
    assert isinstance(full, StoreError) and "cannot write to store /s.zarr: No space left on device" in str(full)
    for code, text in ((errno.EROFS, "Read-only file system"), (errno.EDQUOT, "Disk quota exceeded")):
        fault = store_fault("/s.zarr", OSError(code, text))
        assert isinstance(fault, StoreError) and f"cannot write to store /s.zarr: {text}" in str(fault)
    assert store_fault("/s.zarr", FileNotFoundError(errno.ENOENT, "No such file")) is None  # one job's input
    assert store_fault("/s.zarr", ValueError("bad tile")) is None


# --- 5. load: many jobs, few styles -----------------------------------------------------------


def test_thirty_jobs_share_five_styles_targets_once_and_one_model_per_worker(tmp_path: Path) -> None:
    sizes = ("32", "48")
    lines = [f"job{i:02d} designs/d{i % 6}.png s{i % 5} {sizes[i % 2]}" for i in range(30)]
    path = coarse_manifest(tmp_path, lines, styles=5)
    buffer = io.StringIO()
    result: RunResult = run(path, tmp_path / "load.zarr", config=tmp_path / "coarse.toml",
                            console=Console(file=buffer, width=200))  # fmt: skip
    assert result.exit_code == 0, buffer.getvalue()
    assert {o.status for o in result.outcomes.values()} == {"done"}
    pairs = {(f"s{i % 5}", sizes[i % 2]) for i in range(30)}
    assert len(pairs) == 10
    assert result.task_counts == {"targets": 10, "coarse": 30}  # once per (style, scale), not per job
    stats = result.worker_stats.values()
    assert len(stats) == 2
    assert sum(s["computed"].get("targets", 0) for s in stats) == 10  # and each computed exactly once
    assert sum(s["computed"].get("coarse", 0) for s in stats) == 30
    for s in stats:
        if s["computed"]:
            assert s["model_loads"] == 1 and s["models_cached"] == 1, s  # the VGG is loaded once per worker
        assert s["inputs_cached"] <= 8  # decoded inputs are a bounded cache, not one per job

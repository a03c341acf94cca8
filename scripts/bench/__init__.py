"""weft benchmarks: speed, memory and overhead figures for ``docs/benchmarks.md``.

Run from the repository root: ``python -m scripts.bench --help``. One module per section
(``engine``, ``padding``, ``geometry``, ``pipeline_run``, ``export``, ``separation``, ``load``,
``feedforward``, ``style_span``, ``tile_memory``, ``ceiling``, ``throughput``), each with a
``bench_*`` function returning rows (dicts), and ``TITLE``, ``tables(rows)``, ``summary(rows)``
for the renderer; ``machine`` holds the facts and timing helpers, ``render`` the tables and
the markdown, ``cluster`` what the pipeline and load sections share. What the figures mean
is written in ``docs/benchmarks.md``, not here.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DESIGN = ROOT / "manifests" / "designs" / "morris_strawberry_thief.jpg"
STYLE = ROOT / "manifests" / "styles" / "hokusai_great_wave.jpg"
NO_GPU = "not measured: no GPU in this session"
MIB = 2**20

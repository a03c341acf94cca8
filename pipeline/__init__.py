"""weft: seamless, print-ready, style-transferred textile repeat tiles.

The import package is ``pipeline``; the command is ``weft``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("weft-textile")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+local"

#: Bumped whenever a change to the engine would change output pixels; part of every job key,
#: so a rerun after such a change recomputes instead of skipping stale results.
ENGINE_VERSION = "2"  # 2: zero padding inside the convolutions (issue 13)

__all__ = ["ENGINE_VERSION", "__version__"]

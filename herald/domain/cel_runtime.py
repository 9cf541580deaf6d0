"""The CEL runtime (the `cel` package), without the command line its package imports.

`cel/__init__.py` imports `cel.cli`, its REPL, which brings prompt_toolkit and pygments: about 0.2 s of CPU at
the start of every Herald process (the API, each worker, every `herald` command) for a tool Herald never runs.
A placeholder module stands in for it before the package is imported; CEL itself (`cel.compile`, `cel.Context`)
is untouched.
"""

from __future__ import annotations

import sys
import types

sys.modules.setdefault("cel.cli", types.ModuleType("cel.cli"))

import cel  # noqa: E402  (after the placeholder, on purpose)

__all__ = ["cel"]

"""Optional dependencies: the extras of ``pip install 'inforidge[...]'``.

A core install (``pip install inforidge``) has the estimators, the training callback, ``run``
and ``sweep``. The rest needs an extra (pyproject.toml lists them):

- ``plots``: matplotlib (the figures; runs without it write tables and reports, no figures);
- ``layers``: nlpaug, scikit-learn, scipy (``inforidge layers``: augmentations, probes,
  rank correlations);
- ``data``: datasets (tasks and corpora from the Hugging Face hub, ``TaskData.dataset``);
- ``all``: every extra.

Modules import these packages inside the functions that use them, through
:func:`require`, so a missing one fails there with the pip command that installs it.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

# importable name -> extra that installs it
EXTRA_OF = {
    "matplotlib": "plots",
    "nlpaug": "layers",
    "sklearn": "layers",
    "scipy": "layers",
    "datasets": "data",
}


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def install_hint(module: str) -> str:
    extra = EXTRA_OF[module.split(".")[0]]
    return f"pip install 'inforidge[{extra}]'"


def available(module: str) -> bool:
    """True if the top-level package of ``module`` can be imported (without importing it)."""
    return importlib.util.find_spec(module.split(".")[0]) is not None


def require(module: str, purpose: str = "") -> ModuleType:
    """``importlib.import_module(module)``, or a :class:`MissingExtraError` naming the extra."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        top = module.split(".")[0]
        if err.name is None or err.name.split(".")[0] != top:
            raise
        what = f" for {purpose}" if purpose else ""
        raise MissingExtraError(
            f"{top} is needed{what} but is not installed; install it with {install_hint(top)}"
        ) from err

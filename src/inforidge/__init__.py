"""InfoRidge: how task information flows through the layers of a transformer LM.

The package is one folder per pipeline stage (see README, "Code layout"). The names most
users need are re-exported here lazily (PEP 562), so ``import inforidge`` stays light: nothing
below is imported until it is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "RunConfig": "inforidge.config.schema",
    "MeasureSettings": "inforidge.config.settings",
    "LayerSuiteSettings": "inforidge.config.settings",
    "load_config": "inforidge.config.loading",
    "TaskData": "inforidge.tasks.base",
    "build_task": "inforidge.tasks.registry",
    "locate_parts": "inforidge.models.parts",
    "ModelParts": "inforidge.models.parts",
    "validate_parts": "inforidge.models.validate",
    "Evaluator": "inforidge.measure.predictive",
    "measure_layers": "inforidge.measure.layer_suite",
    "ResultsTable": "inforidge.results.table",
    "InfoRidgeCallback": "inforidge.pipelines.tracking",
    "run": "inforidge.pipelines.run",
    "measure_model": "inforidge.pipelines.measure",
    "analyze_run": "inforidge.pipelines.analyze",
    "sweep": "inforidge.pipelines.sweep",
    "run_layers": "inforidge.pipelines.layers",
    "generate_info": "inforidge.pipelines.generate_info",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'inforidge' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

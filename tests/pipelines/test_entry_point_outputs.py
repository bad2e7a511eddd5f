"""Every pipeline entry point returns an object with ``.frame`` (a DataFrame) and ``out_dir``."""

import pandas as pd

from inforidge.pipelines.generate_info import GenerateInfoOutput
from inforidge.pipelines.layers import LayersOutput
from inforidge.pipelines.run import RunOutput
from inforidge.pipelines.sweep import SweepResult
from inforidge.results.table import ResultsTable


def test_one_convention(tmp_path):
    table = ResultsTable(tmp_path)
    table.append([{"step": 0, "split": "id", "metric": "m", "layer": 0, "value": 1.0, "sigma": 1.0}])
    outputs = [RunOutput(tmp_path, table, tmp_path / "report.md", {}), SweepResult(table, []),
               GenerateInfoOutput(tmp_path, table, None, {}, None, {}),
               LayersOutput(tmp_path, table.frame, tmp_path / "report.md", {})]
    for out in outputs:
        assert isinstance(out.frame, pd.DataFrame) and len(out.frame) == 1, type(out).__name__
        assert out.out_dir == tmp_path, type(out).__name__

"""With one seed there is no spread over seeds: none is computed or printed."""

import math

import pandas as pd

from inforidge.report.run import _peak_phrase
from inforidge.results.summaries import ridge_of_curves


def test_one_seed_has_no_spread_and_says_so():
    one = pd.DataFrame([[0.1, 0.6, 0.3, 0.2]], columns=[0, 1, 2, 3])  # seed x layer
    r = ridge_of_curves(one)
    assert r["peak_layer"] == 1 and math.isnan(r["drop_std"]) and r["ridge"] is True
    row = {f"corrected_{k}": v for k, v in r.items()}
    text = _peak_phrase("corrected MI", row, "corrected", 3)
    assert "one seed: no spread" in text and "± 0.000" not in text
    two = pd.DataFrame([[0.1, 0.6, 0.3, 0.2], [0.1, 0.5, 0.3, 0.25]], columns=[0, 1, 2, 3])
    r2 = ridge_of_curves(two)
    assert r2["drop_std"] > 0
    text2 = _peak_phrase("corrected MI", {f"corrected_{k}": v for k, v in r2.items()}, "corrected", 3)
    assert "over seeds" in text2

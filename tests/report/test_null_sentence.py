"""The report says which permutation null the corrected values use."""

import pandas as pd

from inforidge.report.run import null_sentence


def test_within_length_null_is_named_with_its_splits():
    df = pd.DataFrame({"split": ["id", "ood", "all"],
                       "null": ["permutation_within_length", "permutation", None]})
    text = null_sentence(df)
    assert "same length in in-distribution" in text and "out-of-distribution" not in text


def test_plain_null_and_old_tables_without_the_column():
    assert null_sentence(pd.DataFrame({"split": ["id"], "null": ["permutation"]})) == "targets shuffled over all samples"
    assert null_sentence(pd.DataFrame({"split": ["id"]})) == "targets shuffled over all samples"

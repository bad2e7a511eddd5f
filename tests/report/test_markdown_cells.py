"""Markdown tables: a pipe in a value cannot break a row; values that round to zero print unsigned."""

import pandas as pd

from inforidge.report.markdown import format_number, markdown_table


def test_negative_zero_and_rounding():
    assert format_number(-0.0) == "0.000" and format_number(-0.0004) == "0.000"
    assert format_number(-0.0005) == "-0.001" and format_number(-1.25, 1) == "-1.2"
    assert format_number(float("nan")) == "—" and format_number(None) == "—"


def test_pipes_and_newlines_are_escaped():
    text = markdown_table(pd.DataFrame({"a|b": ["x|y", "two\nlines"], "v": [-0.0001, 2.0]}))
    lines = text.splitlines()
    assert len(lines) == 4  # header, rule, two rows: no row split by a newline
    assert all(line.count("|") - line.count("\\|") == 3 for line in lines)  # 3 real separators per row
    assert "x\\|y" in text and "a\\|b" in text and "| 0.000 |" in text and "-0.000" not in text

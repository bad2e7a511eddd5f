"""The offline multi-token task for pretrained LMs: continue a real paragraph; the gold target is
the rest of it, cut to as many tokens as are generated."""

import json

import pandas as pd
import pytest

from inforidge.tasks.corpora import builtin_corpus
from inforidge.tasks.multitoken import TASKS, load_multitoken_task, text_continuation


def test_builtin_paragraphs_split_into_prompt_and_rest():
    recs = text_continuation(n=20, seed=3)
    paragraphs = set(builtin_corpus())
    assert len(recs) == 20 and len({r["id"] for r in recs}) == 20
    for r in recs:
        assert len(r["prompt"].split()) == 24 and len(r["target"].split()) >= 12
        assert r["target"].startswith(" ") and (r["prompt"] + r["target"]) in paragraphs  # a real paragraph
    assert text_continuation(n=20, seed=3) == recs and text_continuation(n=20, seed=4) != recs
    assert load_multitoken_task("continuation", n=5, seed=0) == text_continuation(n=5, seed=0)
    assert "continuation" in TASKS


def test_own_text_file_and_too_short_paragraphs(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("\n\n".join(" ".join(f"w{(i + j) % 40}" for j in range(40)) for i in range(5)) + "\n\nshort one\n")
    recs = text_continuation(f, n=None, prompt_words=10, min_target_words=5)
    assert len(recs) == 5 and all(len(r["target"].split()) == 30 for r in recs)
    with pytest.raises(ValueError, match="longer paragraphs"):
        text_continuation(f, prompt_words=50)


@pytest.mark.slow
def test_generate_info_continuation_cuts_targets_to_the_generated_tokens(tiny_gpt2, word_tokenizer, tiny_task, tmp_path):
    from typer.testing import CliRunner

    from inforidge.cli import app

    model = tmp_path / "m"
    tiny_gpt2.save_pretrained(model)
    word_tokenizer.save_pretrained(model)
    words = [w for w in tiny_task.vocabulary if w.startswith(("S", "N"))]
    text = tmp_path / "para.txt"
    text.write_text("\n\n".join(" ".join(words[(7 * i + j) % len(words)] for j in range(45)) for i in range(10)))
    out = tmp_path / "gi"
    res = CliRunner().invoke(app, ["generate-info", "--model", str(model), "--task", "continuation", "--data", str(text),
                                   "--n", "10", "--max-new-tokens", "4", "--n-permutations", "2", "--quiet",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["target_tokens_max"] == 4 and summary["generation"]["max_target_tokens"] == 4
    df = pd.read_parquet(out / "results.parquet")
    assert sorted(df.loc[df["step"] >= 0, "step"].unique()) == [0, 1, 2, 3]

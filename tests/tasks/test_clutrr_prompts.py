"""CLUTRR for pretrained tokenizers: plain or bracketed story names, and first-token collisions
of the relation words (father-in-law -> father) stopped with the relations named."""

import os
from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from inforidge.config.loading import load_config
from inforidge.measure.predictive import Evaluator
from inforidge.tasks.clutrr import clutrr_names_for, load_clutrr_task, story_names, words_of
from inforidge.tasks.registry import build_task
from inforidge.tasks.tokenize import PAD, UNK, target_token_ids, tokenize_for_next_token

REAL = Path(os.environ.get("INFORIDGE_CLUTRR_DIR", Path(__file__).resolve().parents[3] / "shared" / "data" / "clutrr"))
GENERATED = ["task.name=clutrr", "task.clutrr_generate=true", "task.n_train=40", "task.n_validation=8",
             "task.n_test=40"]


def test_story_names_plain_and_bracketed_with_their_spans():
    story = "[Ava] bought a kite for her son [Ben]. [Ben] and his sister [Cleo] flew it."
    kept, spans = story_names(story, "brackets")
    assert kept == story and [kept[a:b] for _, a, b in spans] == ["[Ava]", "[Ben]", "[Ben]", "[Cleo]"]
    plain, spans = story_names(story, "plain")
    assert plain == "Ava bought a kite for her son Ben. Ben and his sister Cleo flew it."
    assert [(n, plain[a:b]) for n, a, b in spans] == [("Ava", "Ava"), ("Ben", "Ben"), ("Ben", "Ben"), ("Cleo", "Cleo")]
    with pytest.raises(ValueError, match="names must be one of"):
        story_names(story, "curly")


def test_auto_drops_the_brackets_for_a_pretrained_model():
    assert clutrr_names_for("auto", pretrained=True) == "plain"
    assert clutrr_names_for("auto", pretrained=False) == "brackets"
    assert clutrr_names_for("brackets", pretrained=True) == "brackets"
    with pytest.raises(ValueError, match="task.clutrr_names must be 'auto' or one of"):
        load_config(None, ["task.clutrr_names=curly"])
    bracketed = build_task(load_config(None, GENERATED))
    plain = build_task(load_config(None, [*GENERATED, "task.clutrr_names=auto", "model.name_or_path=some/model"]))
    assert plain.metadata["names"] == "plain" and bracketed.metadata["names"] == "brackets"
    for split, records in plain.splits.items():
        for p, b in zip(records, bracketed.splits[split], strict=True):
            assert "[" in b["prompt"] and "[" not in p["prompt"]
            assert p["prompt"] == b["prompt"].replace("[", "").replace("]", "")
            assert p["target"] == b["target"]
            # the spans mark the same people, without their brackets
            assert [p["prompt"][x:y] for x, y in p["signal_spans"]] == \
                   [b["prompt"][x + 1:y - 1] for x, y in b["signal_spans"]]


@pytest.mark.skipif(not (REAL / "gen_train23_test2to10").is_dir(), reason="real CLUTRR files not present")
def test_real_clutrr_prompt_without_brackets():
    task = load_clutrr_task(REAL / "gen_train23_test2to10", names="plain")
    first = task.splits["test_id"][0]
    assert first["prompt"] == ("Story: Scott and Lewis are brothers. Jason is father of their father\n"
                               "Query: What is the relationship between Jason and Lewis? Answer:")
    assert [first["prompt"][a:b] for a, b in first["signal_spans"]] == ["Scott", "Lewis", "Jason"]


def punctuation_tokenizer(records) -> PreTrainedTokenizerFast:
    """A word-level tokenizer that splits at punctuation, as BPE does: 'father-in-law' is
    'father' '-' 'in' '-' 'law'."""
    pre = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    words = sorted({w for text in words_of(records) for w, _ in pre.pre_tokenize_str(text)})
    core = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate([PAD, UNK, *words])}, unk_token=UNK))
    core.pre_tokenizer = pre
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, unk_token=UNK, padding_side="left")


def test_the_clutrr_path_stops_at_merged_relations_and_names_them():
    task = build_task(load_config(None, GENERATED))
    tok = punctuation_tokenizer([r for rs in task.splits.values() for r in rs])
    for build in (lambda: tokenize_for_next_token(task.splits["train"], tok, "first"),
                  lambda: Evaluator(tok, {"id": task.splits["test_id"], "ood": task.splits["test_ood"]},
                                    load_config(None, ["tracking.measure.n_samples=8"]).tracking.measure,
                                    multi_token_target="first")):
        with pytest.raises(ValueError) as err:
            build()
        message = str(err.value)
        assert "' father' / ' father-in-law' -> 'father'" in message
        assert "first_allow_collisions" in message


@pytest.mark.slow
@pytest.mark.skipif(not (REAL / "gen_train23_test2to10").is_dir(), reason="real CLUTRR files not present")
def test_real_clutrr_relations_in_smollm2_collide_and_are_listed(smollm2_tokenizer):
    task = load_clutrr_task(REAL / "gen_train23_test2to10", names="plain")
    targets = [r["target"] for rs in task.splits.values() for r in rs]
    relations = sorted(set(targets))
    first = {smollm2_tokenizer(t, add_special_tokens=False)["input_ids"][0] for t in relations}
    assert (len(relations), len(first)) == (18, 14)
    with pytest.raises(ValueError) as err:
        target_token_ids(smollm2_tokenizer, targets, "first")
    message = str(err.value)
    assert message.startswith("4 first token(s) are shared by distinct targets")
    for pair in ("' father' / ' father-in-law' -> 'Ġfather'", "' son' / ' son-in-law' -> 'Ġson'"):
        assert pair in message
    assert "task.multi_token_target=whole" in message
    # 'whole' keeps every relation apart: no error, the first tokens for extraction
    assert target_token_ids(smollm2_tokenizer, targets, "whole").shape == (len(targets),)

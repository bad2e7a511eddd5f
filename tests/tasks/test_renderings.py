"""The synthetic task writes every target value as ONE distinct token of the model's tokenizer."""

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from inforidge.config.loading import load_config
from inforidge.tasks import ArithmeticSpec, build_arithmetic_task
from inforidge.tasks.registry import build_task, renders_for_tokenizer
from inforidge.tasks.synthetic import LETTERS, Rendering, choose_rendering, rendering_problems
from inforidge.tasks.tokenize import build_word_tokenizer, target_token_ids

SPEC = {"n_train": 64, "n_validation": 8, "n_test": 60, "seed": 2}


@pytest.fixture(scope="module")
def digit_tokenizer():
    """Like a BPE tokenizer on this task: digits are single tokens, so 'S6' is 'S' + '6'."""
    words = ["[PAD]", "[UNK]", *LETTERS, *"0123456789", "?"]
    core = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                  pre_tokenizers.Digits(individual_digits=True)])
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]")


def signals_of(record) -> list[int]:
    p, s0, d = record["modulus"], record["s0"], record["d"]
    return [(s0 + i * d) % p for i in range(10)]


def test_words_stay_the_default_and_the_word_tokenizer_keeps_them(tiny_task, word_tokenizer):
    assert choose_rendering("auto") == Rendering("words")
    spec = ArithmeticSpec(n_train=256, n_validation=32, n_test=48, seed=3, rendering="auto")
    # with the task's own word tokenizer auto picks words, and the records are the same,
    # signal positions (found by offsets) included
    again = build_arithmetic_task(spec, word_tokenizer)
    assert again.splits == tiny_task.splits
    assert again.metadata["rendering"] == "words" and tiny_task.signal_token_prefix == "S"


def test_auto_picks_letters_when_the_tokenizer_splits_the_words(digit_tokenizer):
    spec = ArithmeticSpec(**SPEC, rendering="auto")
    task = build_arithmetic_task(spec, digit_tokenizer)
    assert task.metadata == {"rendering": "letters", "target_prefix": " "}
    words = build_arithmetic_task(ArithmeticSpec(**SPEC))
    for split, records in task.splits.items():
        ids = target_token_ids(digit_tokenizer, [r["target"] for r in records], "error")  # one token each
        assert len(set(ids.tolist())) == len({r["target"] for r in records})
        for r, w in zip(records, words.splits[split], strict=True):
            assert {k: r[k] for k in ("modulus", "s0", "d")} == {k: w[k] for k in ("modulus", "s0", "d")}
            s = signals_of(r)
            assert r["target"] == " " + LETTERS[s[9]]
            tokens = digit_tokenizer.convert_ids_to_tokens(digit_tokenizer(r["prompt"])["input_ids"])
            assert [tokens[i] for i in r["signal_positions"]] == [LETTERS[v] for v in s[:9]]
    assert task.signal_token_prefix is None


def test_an_explicit_rendering_the_tokenizer_splits_is_an_error(digit_tokenizer):
    with pytest.raises(ValueError) as err:
        build_arithmetic_task(ArithmeticSpec(**SPEC, rendering="words"), digit_tokenizer)
    message = str(err.value)
    assert "task.rendering=words" in message and "are not one token" in message
    assert "'S1' -> ['S', '1']" in message and "task.rendering=auto" in message
    assert rendering_problems(digit_tokenizer, Rendering("letters"), 20) == []


def test_shared_tokens_and_unknown_tokens_are_named():
    tok = build_word_tokenizer(["A", "B"])  # C.. are the unknown token, all the same id
    problems = rendering_problems(tok, Rendering("letters"), 4)
    assert any("'C' / 'D' -> '[UNK]'" in p for p in problems)
    assert any("unknown token" in p for p in problems)
    with pytest.raises(ValueError, match="values 0..25"):
        Rendering("letters").signal(26)
    assert rendering_problems(tok, Rendering("letters"), 27) == ["27 values but only 26 letters"]


def test_bad_rendering_names_are_rejected():
    with pytest.raises(ValueError, match="rendering must be 'auto' or one of"):
        ArithmeticSpec(rendering="digits")
    with pytest.raises(ValueError, match="task.rendering must be 'auto' or one of"):
        load_config(None, ["task.rendering=digits"])


def test_the_registry_renders_for_a_pretrained_tokenizer(digit_tokenizer):
    config = load_config(None, ["task.n_train=64", "task.n_validation=8", "task.n_test=16"])
    assert not renders_for_tokenizer(config) and config.task.rendering == "auto"
    assert build_task(config).metadata["rendering"] == "words"
    config = load_config(None, ["task.n_train=64", "task.n_validation=8", "task.n_test=16",
                                "model.name_or_path=some/model"])
    assert renders_for_tokenizer(config)
    assert build_task(config, digit_tokenizer).metadata["rendering"] == "letters"


@pytest.mark.slow
def test_every_target_is_one_distinct_smollm2_token(smollm2_tokenizer):
    tok = smollm2_tokenizer
    # the user's finding: with words every target starts with the token 'S'
    problems = rendering_problems(tok, Rendering("words"), 20)
    assert any("'S0' / 'S1' / 'S2' / 'S3' / 'S4' ... (20 values) -> 'S'" in p for p in problems)
    task = build_arithmetic_task(ArithmeticSpec(n_train=64, n_validation=8, n_test=400, seed=1, rendering="auto"), tok)
    assert task.metadata["rendering"] == "letters"
    # every value 0..19 (OOD moduli reach 20) is one token, distinct per value
    ids = target_token_ids(tok, [Rendering("letters", task.metadata["target_prefix"]).target(s) for s in range(20)],
                           "error")
    assert len(set(ids.tolist())) == 20
    for records in task.splits.values():
        target_token_ids(tok, [r["target"] for r in records], "error")
        for r in records[:50]:
            tokens = tok.convert_ids_to_tokens(tok(r["prompt"], add_special_tokens=False)["input_ids"])
            assert [tokens[i].lstrip("Ġ") for i in r["signal_positions"]] == [LETTERS[v] for v in signals_of(r)[:9]]
    assert len({r["target"] for r in task.splits["test_ood"]}) > 13

"""Distinct targets that share a first token would merge two classes of the label."""

import logging

import pytest

from inforidge.tasks.tokenize import build_word_tokenizer, target_token_ids


@pytest.fixture(scope="module")
def tok():
    return build_word_tokenizer(["father", "in", "law", "mother", "son"])


def test_first_token_collision_is_an_error_naming_the_targets(tok):
    with pytest.raises(ValueError) as err:
        target_token_ids(tok, ["father in law", "father", "mother", "son"], "first")
    message = str(err.value)
    assert "'father' / 'father in law' -> 'father'" in message
    assert "first_allow_collisions" in message, "the error names the way to go on"
    assert "mother" not in message, "only the colliding targets are listed"


def test_collisions_can_be_allowed_with_a_warning(tok, caplog):
    father, mother = tok.convert_tokens_to_ids(["father", "mother"])
    with caplog.at_level(logging.WARNING, logger="inforidge.tasks.tokenize"):
        ids = target_token_ids(tok, ["father in law", "father", "mother"], "first_allow_collisions")
    assert ids.tolist() == [father, father, mother]
    assert any("merges them into one class" in r.getMessage() for r in caplog.records)


def test_repeated_targets_and_distinct_first_tokens_are_no_collision(tok):
    ids = target_token_ids(tok, ["father in law", "father in law", "mother", "son in law"], "first")
    assert len(set(ids.tolist())) == 3

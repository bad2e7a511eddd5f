"""A word-level tokenizer for tasks with a closed vocabulary (built with `tokenizers`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import DataCollatorForSeq2Seq, PreTrainedTokenizerFast

from inforidge.config.settings import MULTI_TOKEN_POLICIES, WHOLE

log = logging.getLogger(__name__)


@dataclass
class _MultiTokenTally:
    affected: int = 0
    total: int = 0
    example: str = ""


_tally: ContextVar[_MultiTokenTally | None] = ContextVar("inforidge_multi_token_tally", default=None)


def _warn_multi_token(affected: int, total: int, example: str) -> None:
    log.warning(
        "%d of %d targets are longer than one token; the next-token analysis keeps the first "
        "token of each (multi_token_target='first'), e.g. %s", affected, total, example,
    )


@contextmanager
def one_multi_token_warning():
    """Inside the block, :func:`target_token_ids` counts multi-token targets instead of
    warning per call; ONE warning with the total is logged at the end (used by a run,
    which tokenises train, validation and both test splits separately)."""
    tally = _MultiTokenTally()
    token = _tally.set(tally)
    try:
        yield tally
    finally:
        _tally.reset(token)
        if tally.affected:
            _warn_multi_token(tally.affected, tally.total, tally.example)


def _check_collisions(tokenizer, by_first: dict[int, dict[tuple[int, ...], str]], multi_token: str) -> None:
    """Distinct targets (different token sequences) that share a first token."""
    clashes = {i: list(seqs.values()) for i, seqs in by_first.items() if len(seqs) > 1}
    if not clashes:
        return
    listed = "; ".join(
        f"{' / '.join(repr(t) for t in sorted(group))} -> {tokenizer.convert_ids_to_tokens([i])[0]!r}"
        for i, group in sorted(clashes.items(), key=lambda kv: sorted(kv[1]))[:8]
    )
    more = f" (and {len(clashes) - 8} more)" if len(clashes) > 8 else ""
    message = (f"{len(clashes)} first token(s) are shared by distinct targets, so the next-token label "
               f"merges them into one class: {listed}{more}")
    if multi_token == "first_allow_collisions":
        log.warning("%s; measured as merged classes (task.multi_token_target=first_allow_collisions)", message)
        return
    raise ValueError(f"{message}. Use targets whose first tokens differ (e.g. reword them), set "
                     "task.multi_token_target=whole to measure against the whole targets, or "
                     "task.multi_token_target=first_allow_collisions to measure the merged classes")


def target_token_ids(tokenizer, targets: Sequence[str], multi_token: str = "error") -> torch.Tensor:
    """(N,) ids of the targets' tokens, each tokenised on its own (no special tokens).

    ``multi_token``: what to do with a target longer than one token: 'error' raises naming
    the first one; 'first' keeps its first token and logs one warning counting them, but
    raises when two distinct targets then share a first token (the label would merge two
    classes, e.g. 'father-in-law' and 'father' -> 'father'), naming the collisions;
    'first_allow_collisions' merges them with a warning; 'whole' returns the first tokens
    without a warning or a collision check (the label is the whole target, see
    :func:`target_token_sequences`; the first token is what extraction appends and early exit
    is scored on). A target that is the unknown token, or no token at all, always raises.
    """
    if multi_token not in MULTI_TOKEN_POLICIES:
        raise ValueError(f"multi_token must be one of {MULTI_TOKEN_POLICIES}; got {multi_token!r}")
    ids, affected, example = [], 0, ""
    by_first: dict[int, dict[tuple[int, ...], str]] = {}  # first id -> {full ids: a target}
    for t in targets:
        enc = tokenizer(t, add_special_tokens=False)["input_ids"]
        if not enc:
            raise ValueError(
                f"target {t!r} tokenises to no token; give every record a non-empty target the "
                f"tokenizer ({type(tokenizer).__name__}) can encode"
            )
        if len(enc) > 1 and multi_token != WHOLE:
            if multi_token == "error":
                raise ValueError(
                    f"target {t!r} is {len(enc)} tokens {enc}, but the next-token analysis needs "
                    "exactly one; use a single-token label (e.g. a leading space for BPE tokenizers) "
                    "or task.multi_token_target=first to keep the first token"
                )
            affected += 1
            example = example or f"{t!r} -> {tokenizer.convert_ids_to_tokens(enc[:1])[0]!r}"
        if enc[0] == tokenizer.unk_token_id:
            raise ValueError(f"target {t!r} is the unknown token; add it to the vocabulary")
        ids.append(enc[0])
        by_first.setdefault(enc[0], {}).setdefault(tuple(enc), t)
    if multi_token != WHOLE:
        _check_collisions(tokenizer, by_first, multi_token)
    tally = _tally.get()
    if tally is not None:
        tally.affected += affected
        tally.total += len(ids)
        tally.example = tally.example or example
    elif affected:
        _warn_multi_token(affected, len(ids), example)
    return torch.tensor(ids, dtype=torch.long)


PAD, UNK, BOS = "[PAD]", "[UNK]", "[BOS]"


def build_word_tokenizer(vocabulary: list[str]) -> PreTrainedTokenizerFast:
    """Whitespace-split word-level tokenizer: every word of ``vocabulary`` is one token.

    Special tokens: [PAD] (id 0), [UNK] (1), [BOS] (2, also used as eos). Padding side is
    left, the convention for decoder-only models. Save it with ``save_pretrained`` beside
    the model; ``AutoTokenizer.from_pretrained`` loads it back.
    """
    words = list(dict.fromkeys(vocabulary))
    if not words:
        raise ValueError("the vocabulary is empty; a word-level tokenizer needs at least one word")
    clash = [w for w in words if w in (PAD, UNK, BOS) or any(c.isspace() for c in w)]
    if clash:
        raise ValueError(f"vocabulary words must be non-special and contain no whitespace: {clash[:5]}")
    vocab = {tok: i for i, tok in enumerate([PAD, UNK, BOS, *words])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token=PAD,
        unk_token=UNK,
        bos_token=BOS,
        eos_token=BOS,
        padding_side="left",
    )


def target_token_sequences(tokenizer, targets: Sequence[str]) -> list[list[int]]:
    """Every token id of each target, tokenised on its own (no special tokens), as
    :func:`target_token_ids` reads it (which checks that none is empty or unknown)."""
    target_token_ids(tokenizer, targets, WHOLE)
    return [list(ids) for ids in tokenizer(list(targets), add_special_tokens=False)["input_ids"]]


class TokenizedRecords(torch.utils.data.Dataset):
    """A list of tokenised samples (dicts of input_ids, attention_mask, labels) as a map-style
    torch Dataset: what :class:`transformers.Trainer` and the collators read, without the
    ``datasets`` package (an optional extra)."""

    def __init__(self, rows: list[dict]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]


def tokenize_for_next_token(records: list[dict], tokenizer, multi_token_target: str = "error") -> TokenizedRecords:
    """input_ids = prompt + target token(s); labels = -100 except the target (loss on it only).

    ``multi_token_target``: policy for targets longer than one token (see
    :func:`~inforidge.tasks.tokenize.target_token_ids`); 'first' trains on their first token,
    'whole' on every token of the target (teacher forced).
    """
    targets = [r["target"] for r in records]
    if multi_token_target == WHOLE:
        target_ids = target_token_sequences(tokenizer, targets)
    else:
        target_ids = [[t] for t in target_token_ids(tokenizer, targets, multi_token_target).tolist()]
    enc = tokenizer([r["prompt"] for r in records], add_special_tokens=True)
    ids = [p + t for p, t in zip(enc["input_ids"], target_ids, strict=True)]
    return TokenizedRecords([
        {"input_ids": i, "attention_mask": [1] * len(i), "labels": [-100] * (len(i) - len(t)) + t}
        for i, t in zip(ids, target_ids, strict=True)
    ])


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) position ids that count only real tokens, so left padding does not shift positions."""
    return (attention_mask.long().cumsum(1) - 1).clamp_min(0)


class NextTokenCollator:
    """Pads input_ids with the pad token and labels with -100 (on the tokenizer's side, left
    for our loaders) and, with ``position_ids``, adds position ids that count only real
    tokens: a model with learned absolute positions (GPT-2, OPT) then trains each prompt at
    the positions measurement reads it at, whatever the batch's padding."""

    def __init__(self, tokenizer, *, position_ids: bool = False):
        self.pad = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
        self.position_ids = position_ids

    def __call__(self, features: list[dict]) -> dict:
        batch = self.pad(features)
        # Unpadded batches keep the model's default positions (the same numbers; explicit
        # position ids can switch attention kernels and change the round-off).
        if self.position_ids and not bool(batch["attention_mask"].all()):
            batch["position_ids"] = position_ids_from_mask(batch["attention_mask"])
        return batch


def collator(tokenizer, *, position_ids: bool = False) -> NextTokenCollator:
    """The training collator; pass ``position_ids=True`` for every model whose forward takes them."""
    return NextTokenCollator(tokenizer, position_ids=position_ids)


UNKNOWN_WARN_SHARE = 0.05  # above this share of [UNK] tokens a measurement is flagged
UNKNOWN_REFUSE_SHARE = 0.5  # above this it measures the unknown token, not the text


@dataclass(frozen=True)
class UnknownTokens:
    """How much of a text source the tokenizer maps to its unknown token."""

    n_unknown: int
    n_tokens: int

    @property
    def share(self) -> float:
        return self.n_unknown / self.n_tokens if self.n_tokens else 0.0


def count_unknown_tokens(tokenizer, texts: Sequence[str]) -> UnknownTokens:
    """Unknown tokens among all tokens of ``texts`` (no special tokens added). A tokenizer
    without an unknown token (byte-level BPE) reads every text: 0 unknown."""
    unk = tokenizer.unk_token_id
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"] if texts else []
    n_tokens = sum(len(seq) for seq in ids)
    n_unknown = 0 if unk is None else sum(seq.count(unk) for seq in ids)
    return UnknownTokens(n_unknown, n_tokens)


def check_unknown_tokens(tokenizer, texts: Sequence[str], what: str, *, allow: bool = False) -> UnknownTokens:
    """Warn when more than 5 % of the tokens of ``texts`` are unknown; refuse above 50 %
    (the states would describe the unknown token, not the text) unless ``allow``."""
    counts = count_unknown_tokens(tokenizer, texts)
    if counts.share > UNKNOWN_REFUSE_SHARE and not allow:
        raise ValueError(
            f"{what}: {counts.n_unknown} of {counts.n_tokens} tokens ({counts.share:.0%}) are the unknown token "
            f"{tokenizer.unk_token!r} of this tokenizer ({type(tokenizer).__name__}); it cannot read this text. "
            "Use a model whose tokenizer covers it, or measure anyway with allow_unknown_tokens=True "
            "(layers / generate-info: --allow-unknown-tokens)"
        )
    if counts.share > UNKNOWN_WARN_SHARE:
        log.warning("%s: %d of %d tokens (%.0f%%) are the unknown token %r", what, counts.n_unknown,
                    counts.n_tokens, 100 * counts.share, tokenizer.unk_token)
    return counts

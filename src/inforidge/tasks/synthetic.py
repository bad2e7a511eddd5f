"""The paper's synthetic arithmetic task (METHOD §6) and its word-level tokenizer.

A sample is 10 elements ``S{s}_N{n}`` with s_i = (s_0 + i*d) mod p and noise n uniform in
0..99. The prompt is the first 9 elements, the target the signal of the 10th. Each element
is written as two words, ``S{s} N{n}``, and the prompt ends with a query word ``?`` whose
position is the "last position" every measurement reads. (One token per element, "S3_N42",
did not learn from scratch in 6 epochs; two tokens per element learns in about 3.)
Example, p = 13, d = 2: "S1 N42 S3 N88 S5 N20 S7 N10 S9 N65 S11 N43 S0 N99 S2 N38 S4 N77 ?" -> "S6".

Renderings (``task.rendering``): the next-token label needs every target value to be ONE token,
distinct per value. ``words`` (above) is one token per word for the task's own word tokenizer
(the from-scratch model), but a BPE tokenizer splits ``S6`` into ``S`` + ``6``, so every
target shares the first token ``S`` and the label has one class (0 bits everywhere).
``letters`` writes a signal value as one capital letter (0 -> A, ..., 25 -> Z) and noise as
its number: "B 42 D 88 ... ?" -> " G" (the target with a leading space when the tokenizer
needs one for single tokens). :func:`choose_rendering` checks a rendering against a tokenizer
(every target value exactly one token, distinct values distinct tokens); ``auto`` takes the
first of words, letters that passes (words for the word tokenizer). Noise may stay several
tokens; ``signal_positions`` are then found with the tokenizer's offsets.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from inforidge.config.settings import RENDERINGS
from inforidge.tasks.base import TaskData, make_record

log = logging.getLogger(__name__)

QUERY_TOKEN = "?"


LETTERS = string.ascii_uppercase


@dataclass(frozen=True)
class Rendering:
    """How the task writes its values. ``name``: 'words' (S6 / N42) or 'letters' (G / 42);
    ``target_prefix``: text before the target value ('' or ' ', see :func:`choose_rendering`)."""

    name: str = "words"
    target_prefix: str = ""

    def __post_init__(self) -> None:
        if self.name not in RENDERINGS:
            raise ValueError(f"rendering must be one of {RENDERINGS}; got {self.name!r}")

    def signal(self, s: int) -> str:
        if self.name == "words":
            return f"S{s}"
        if not 0 <= s < len(LETTERS):
            raise ValueError(f"rendering 'letters' writes values 0..{len(LETTERS) - 1}; got {s} "
                             "(lower the moduli or use task.rendering=words)")
        return LETTERS[s]

    def noise(self, n: int) -> str:
        return f"N{n}" if self.name == "words" else str(n)

    def target(self, s: int) -> str:
        return self.target_prefix + self.signal(s)

    @property
    def signal_prefix(self) -> str | None:
        """The prefix every signal token starts with (the attention check), None for letters."""
        return "S" if self.name == "words" else None


WORDS = Rendering("words")


# auto tries these in order; words first keeps the word tokenizer's rendering (targets "S6").
CANDIDATES = (Rendering("words"), Rendering("words", " "), Rendering("letters", " "), Rendering("letters"))


def rendering_problems(tokenizer, rendering: Rendering, n_values: int) -> list[str]:
    """Why ``rendering`` does not give one distinct token per target value 0..n_values-1 in
    ``tokenizer`` (empty: it does). Each problem names the targets and their tokens."""
    if rendering.name == "letters" and n_values > len(LETTERS):
        return [f"{n_values} values but only {len(LETTERS)} letters"]
    targets = [rendering.target(s) for s in range(n_values)]
    ids = tokenizer(targets, add_special_tokens=False)["input_ids"]
    problems = []
    split = [f"{t!r} -> {tokenizer.convert_ids_to_tokens(i)}" for t, i in zip(targets, ids, strict=True) if len(i) != 1]
    if split:
        problems.append(f"{len(split)} of {n_values} targets are not one token ({', '.join(split[:4])})")
    unk = getattr(tokenizer, "unk_token_id", None)
    unknown = [t for t, i in zip(targets, ids, strict=True) if len(i) == 1 and unk is not None and i[0] == unk]
    if unknown:
        problems.append(f"targets {unknown[:4]} are the unknown token")
    by_token: dict[int, list[str]] = {}
    for t, i in zip(targets, ids, strict=True):
        if i:
            by_token.setdefault(i[0], []).append(t)
    shared = [f"{' / '.join(map(repr, ts[:5]))}{f' ... ({len(ts)} values)' if len(ts) > 5 else ''}"
              f" -> {tokenizer.convert_ids_to_tokens(i)!r}"
              for i, ts in by_token.items() if len(ts) > 1]
    if shared:
        problems.append(f"{len(shared)} (first) token(s) are shared by distinct values ({'; '.join(shared[:4])})")
    return problems


def choose_rendering(requested: str, tokenizer=None, n_values: int = 20) -> Rendering:
    """The rendering of ``requested`` ('auto' or one of :data:`RENDERINGS`) for ``tokenizer``.

    Without a tokenizer (the from-scratch model, whose word tokenizer is built from the task):
    'auto' is words, a named rendering is taken as it is. With one: every candidate of
    ``requested`` (auto: words, then letters; each without and with a leading space, see
    :data:`CANDIDATES`) is checked by :func:`rendering_problems` and the first that gives one
    distinct token per value 0..n_values-1 is returned; none: a ValueError naming each failure.
    """
    if requested != "auto" and requested not in RENDERINGS:
        raise ValueError(f"task.rendering must be 'auto' or one of {RENDERINGS}; got {requested!r}")
    if tokenizer is None:
        return WORDS if requested == "auto" else Rendering(requested)
    tried = []
    for candidate in CANDIDATES:
        if requested not in ("auto", candidate.name):
            continue
        problems = rendering_problems(tokenizer, candidate, n_values)
        if not problems:
            return candidate
        tried.append(f"{candidate.name} (target prefix {candidate.target_prefix!r}): {'; '.join(problems)}")
    raise ValueError(
        f"task.rendering={requested}: no rendering gives every target value 0..{n_values - 1} exactly one distinct "
        f"token of this tokenizer ({type(tokenizer).__name__}), so the next-token label would merge values: "
        + " | ".join(tried)
        + ". Use task.rendering=auto (tries words and letters), fewer moduli, or a model with another tokenizer"
    )


N_ELEMENTS = 10


NOISE_VALUES = 100


@dataclass(frozen=True)
class ArithmeticSpec:
    """Settings of the synthetic arithmetic task."""

    train_modulus: int = 13
    ood_moduli: tuple[int, ...] = tuple(m for m in range(5, 21) if m != 13)
    n_train: int = 10_000
    n_validation: int = 2_000
    n_test: int = 2_000
    seed: int = 0
    rendering: str = "words"
    """'auto' or one of RENDERINGS (see :func:`choose_rendering`)."""

    def __post_init__(self) -> None:
        if self.rendering != "auto" and self.rendering not in RENDERINGS:
            raise ValueError(f"rendering must be 'auto' or one of {RENDERINGS}; got {self.rendering!r}")
        if self.train_modulus < 2:
            raise ValueError(f"train_modulus must be >= 2; got {self.train_modulus}")
        if not self.ood_moduli or any(m < 2 for m in self.ood_moduli):
            raise ValueError(f"ood_moduli must be a non-empty list of moduli >= 2; got {self.ood_moduli}")
        if self.train_modulus in self.ood_moduli:
            raise ValueError(
                f"ood_moduli {list(self.ood_moduli)} contain the training modulus "
                f"{self.train_modulus}; remove it so the OOD split is really out of distribution"
            )
        for name in ("n_train", "n_validation", "n_test"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")

    @property
    def max_modulus(self) -> int:
        return max(self.train_modulus, *self.ood_moduli)


def arithmetic_sequence(s0: int, d: int, p: int, noise: Sequence[int],
                        rendering: Rendering = WORDS) -> tuple[str, str, list[int]]:
    """Prompt text, target word and the signal values of one sample."""
    signals = [(s0 + i * d) % p for i in range(N_ELEMENTS)]
    words = []
    for s, n in zip(signals[:-1], noise, strict=False):
        words += [rendering.signal(s), rendering.noise(n)]
    return " ".join(words + [QUERY_TOKEN]), rendering.target(signals[-1]), signals


WORD_SIGNAL_POSITIONS = list(range(0, 2 * (N_ELEMENTS - 1), 2))  # signal words of a prompt, split on spaces


def generate_arithmetic(n: int, moduli: Sequence[int], rng: np.random.Generator, split: str,
                        rendering: Rendering = WORDS) -> list[dict]:
    """n records; each draws p from ``moduli``, s_0 in 0..p-1, d in 1..p-1, 9 noise values.
    ``signal_positions`` are word positions (the word tokenizer's token positions)."""
    out = []
    for _ in range(n):
        p = int(rng.choice(moduli))
        s0, d = int(rng.integers(0, p)), int(rng.integers(1, p))
        noise = rng.integers(0, NOISE_VALUES, size=N_ELEMENTS - 1).tolist()
        prompt, target, signals = arithmetic_sequence(s0, d, p, noise, rendering)
        out.append(make_record(prompt, target, split, modulus=p, s0=s0, d=d,
                               signal_positions=list(WORD_SIGNAL_POSITIONS)))
    return out


def signal_token_positions(tokenizer, prompts: Sequence[str]) -> list[list[int]]:
    """Per prompt, the positions (among ``tokenizer(prompt, add_special_tokens=False)``'s tokens)
    of the tokens holding its signal words (the even words), found with the offset mapping."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"{type(tokenizer).__name__} gives no offsets; signal positions need a fast tokenizer")
    enc = tokenizer(list(prompts), add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for prompt, offsets in zip(prompts, enc["offset_mapping"], strict=True):
        starts, at = [], 0
        for w, word in enumerate(prompt.split(" ")):
            if w in WORD_SIGNAL_POSITIONS:
                starts.append(at)
            at += len(word) + 1
        # the token whose character span holds the word's first character (a BPE token may
        # carry the space before it)
        out.append([next(t for t, (a, b) in enumerate(offsets) if a <= c < b) for c in starts])
    return out


def arithmetic_vocabulary(spec: ArithmeticSpec, rendering: Rendering = WORDS) -> list[str]:
    """All words the task can produce: S0..S{max p - 1}, N0..N99 and the query word (words)."""
    return ([rendering.signal(s) for s in range(spec.max_modulus)]
            + [rendering.noise(n) for n in range(NOISE_VALUES)] + [QUERY_TOKEN])


def build_arithmetic_task(spec: ArithmeticSpec | None = None, tokenizer=None) -> TaskData:
    """Seeded train / validation / test_id / test_ood records of the arithmetic task.

    train, validation and test_id use ``train_modulus``; test_ood draws from ``ood_moduli``.
    Each split has its own child seed, so changing one size does not change the others.
    ``tokenizer``: the model's, when it is not the task's own word tokenizer: the rendering is
    chosen / checked for it (:func:`choose_rendering`) and the signal positions are its tokens'.
    The draws do not depend on the rendering: every rendering writes the same samples.
    """
    spec = spec or ArithmeticSpec()
    rendering = choose_rendering(spec.rendering, tokenizer, spec.max_modulus)
    seeds = np.random.SeedSequence(spec.seed).spawn(4)
    rng = [np.random.default_rng(s) for s in seeds]
    p = [spec.train_modulus]
    splits = {
        "train": generate_arithmetic(spec.n_train, p, rng[0], "id", rendering),
        "validation": generate_arithmetic(spec.n_validation, p, rng[1], "id", rendering),
        "test_id": generate_arithmetic(spec.n_test, p, rng[2], "id", rendering),
        "test_ood": generate_arithmetic(spec.n_test, list(spec.ood_moduli), rng[3], "ood", rendering),
    }
    if tokenizer is not None and getattr(tokenizer, "is_fast", False):
        for records in splits.values():
            positions = signal_token_positions(tokenizer, [r["prompt"] for r in records])
            for r, pos in zip(records, positions, strict=True):
                r["signal_positions"] = pos
    elif tokenizer is not None:  # word positions would point at the wrong tokens
        for records in splits.values():
            for r in records:
                del r["signal_positions"]
    if spec.rendering == "auto" and tokenizer is not None:
        log.info("task.rendering=auto: %s (target prefix %r) for %s", rendering.name, rendering.target_prefix,
                 type(tokenizer).__name__)
    return TaskData(
        name="arithmetic",
        splits=splits,
        vocabulary=arithmetic_vocabulary(spec, rendering),
        signal_token_prefix=rendering.signal_prefix,
        metadata={"rendering": rendering.name, "target_prefix": rendering.target_prefix},
    )

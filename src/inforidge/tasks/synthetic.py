"""The paper's synthetic arithmetic task (METHOD §6) and its word-level tokenizer.

A sample is 10 elements ``S{s}_N{n}`` with s_i = (s_0 + i*d) mod p and noise n uniform in
0..99. The prompt is the first 9 elements, the target the signal of the 10th. Each element
is written as two words, ``S{s} N{n}``, and the prompt ends with a query word ``?`` whose
position is the "last position" every measurement reads. (One token per element, "S3_N42",
did not learn from scratch in 6 epochs; two tokens per element learns in about 3.)
Example, p = 13, d = 2: "S1 N42 S3 N88 S5 N20 S7 N10 S9 N65 S11 N43 S0 N99 S2 N38 S4 N77 ?" -> "S6".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from inforidge.tasks.base import TaskData, make_record

QUERY_TOKEN = "?"


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

    def __post_init__(self) -> None:
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


def arithmetic_sequence(s0: int, d: int, p: int, noise: Sequence[int]) -> tuple[str, str, list[int]]:
    """Prompt text, target word and the signal values of one sample."""
    signals = [(s0 + i * d) % p for i in range(N_ELEMENTS)]
    words = []
    for s, n in zip(signals[:-1], noise, strict=False):
        words += [f"S{s}", f"N{n}"]
    return " ".join(words + [QUERY_TOKEN]), f"S{signals[-1]}", signals


def generate_arithmetic(n: int, moduli: Sequence[int], rng: np.random.Generator, split: str) -> list[dict]:
    """n records; each draws p from ``moduli``, s_0 in 0..p-1, d in 1..p-1, 9 noise values."""
    out = []
    for _ in range(n):
        p = int(rng.choice(moduli))
        s0, d = int(rng.integers(0, p)), int(rng.integers(1, p))
        noise = rng.integers(0, NOISE_VALUES, size=N_ELEMENTS - 1).tolist()
        prompt, target, signals = arithmetic_sequence(s0, d, p, noise)
        out.append(
            make_record(
                prompt, target, split, modulus=p, s0=s0, d=d,
                signal_positions=list(range(0, 2 * (N_ELEMENTS - 1), 2)),
            )
        )
    return out


def arithmetic_vocabulary(spec: ArithmeticSpec) -> list[str]:
    """All words the task can produce: S0..S{max p - 1}, N0..N99 and the query word."""
    return [f"S{s}" for s in range(spec.max_modulus)] + [f"N{n}" for n in range(NOISE_VALUES)] + [QUERY_TOKEN]


def build_arithmetic_task(spec: ArithmeticSpec | None = None) -> TaskData:
    """Seeded train / validation / test_id / test_ood records of the arithmetic task.

    train, validation and test_id use ``train_modulus``; test_ood draws from ``ood_moduli``.
    Each split has its own child seed, so changing one size does not change the others.
    """
    spec = spec or ArithmeticSpec()
    seeds = np.random.SeedSequence(spec.seed).spawn(4)
    rng = [np.random.default_rng(s) for s in seeds]
    p = [spec.train_modulus]
    return TaskData(
        name="arithmetic",
        splits={
            "train": generate_arithmetic(spec.n_train, p, rng[0], "id"),
            "validation": generate_arithmetic(spec.n_validation, p, rng[1], "id"),
            "test_id": generate_arithmetic(spec.n_test, p, rng[2], "id"),
            "test_ood": generate_arithmetic(spec.n_test, list(spec.ood_moduli), rng[3], "ood"),
        },
        vocabulary=arithmetic_vocabulary(spec),
        signal_token_prefix="S",
    )

"""Rows of the stress sweeps (token repetition, random tokens, prompt length)."""

from __future__ import annotations

from collections.abc import Sequence

from inforidge.config.settings import LayerSuiteSettings
from inforidge.extract.token_states import StateReader
from inforidge.measure.layer_suite import measure_sequences
from inforidge.tasks.perturb import (
    _check_p,
    _rng,
    content_vocabulary,
    randomize_tokens,
    repeat_tokens,
)


def stress_rows(
    reader: StateReader,
    texts: Sequence[str],
    settings: LayerSuiteSettings | None = None,
    *,
    repetition: Sequence[float] = (),
    randomness: Sequence[float] = (),
    lengths: Sequence[int] = (),
    split: str = "texts",
    step: int | None = None,
    extra: dict | None = None,
    progress: bool = False,
) -> list[dict]:
    """Run the three stress sweeps (any subset) and return their rows."""
    s = settings or LayerSuiteSettings()
    ps_rep = [_check_p(p, "repetition") for p in repetition]
    ps_rand = [_check_p(p, "randomness") for p in randomness]
    ns = [int(n) for n in lengths]
    if any(n < s.min_tokens for n in ns):
        raise ValueError(f"prompt lengths must be >= {s.min_tokens} tokens; got {ns}")
    content = reader.content_ids(texts)
    vocab = content_vocabulary(reader.tokenizer) if ps_rand else None
    rows: list[dict] = []
    # Identical inputs (p = 0 of repetition and of randomness) are measured once.
    measured: dict[tuple, list[dict]] = {}
    sets = [("repetition", v) for v in ps_rep] + [("randomness", v) for v in ps_rand] + [("length", v) for v in ns]
    for kind, value in sets:
        if kind == "length":
            seqs = [reader.with_specials(c[:value]) for c in content if len(c) >= value]
            if len(seqs) < 2:
                raise ValueError(
                    f"stress length={value}: only {len(seqs)} prompt(s) have {value} tokens or more; "
                    "use shorter lengths or longer prompts"
                )
        else:
            seqs = []
            for i, c in enumerate(content):
                rng = _rng(s.seed, kind, value, i)
                c = repeat_tokens(c, value, rng) if kind == "repetition" else randomize_tokens(c, value, rng, vocab)
                seqs.append(reader.with_specials(c))
        more = {**(extra or {}), "stress": kind, "stress_value": float(value)}
        key = tuple(map(tuple, seqs))
        if key not in measured:
            measured[key] = measure_sequences(reader, seqs, s, split=split, step=step, texts=None, extra=more,
                                              progress=progress).rows
        rows += [{**r, **more} for r in measured[key]]
    return rows



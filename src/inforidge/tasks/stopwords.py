"""Content words vs stopwords and punctuation, for the per-token split of paper Fig. 8.

The stopword list is NLTK's English list (``nltk.corpus.stopwords.words("english")``, the
179 words of NLTK data package ``stopwords``, which credits Porter et al.'s list), written out
here so nothing is downloaded at run time. Comparisons are on the lower-cased word.

Classification of one generated token (:func:`token_type`), on its own decoded text:

- ``"special"``: a special token of the tokenizer (EOS, PAD, ...): neither group.
- ``"punctuation"``: no letter or digit in the text (punctuation, symbols, whitespace,
  newlines); counted with the stopwords ("stopwords and punctuation", paper §6).
- ``"stopword"``: the token's word core (letters, digits and inner apostrophes, outer
  punctuation stripped, lower-cased; a leading apostrophe piece such as ``'s`` or ``'t``
  reads as ``s`` / ``t``) is in :data:`STOPWORDS`.
- ``"content"``: anything else with a letter or digit (numbers count as content).

A sub-word piece is classified on its own text (a continuation such as ``ing`` is content);
the stopwords are frequent short words that BPE vocabularies keep whole, so this rarely
matters.
"""

from __future__ import annotations

STOPWORDS_SOURCE = 'NLTK English stopword list (nltk.corpus.stopwords.words("english"), 179 words)'


STOPWORDS: frozenset[str] = frozenset("""
i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself
yourselves he him his himself she she's her hers herself it it's its itself they them their
theirs themselves what which who whom this that that'll these those am is are was were be
been being have has had having do does did doing a an the and but if or because as until
while of at by for with about against between into through during before after above below
to from up down in out on off over under again further then once here there when where why
how all any both each few more most other some such no nor not only own same so than too
very s t can will just don don't should should've now d ll m o re ve y ain aren aren't
couldn couldn't didn didn't doesn doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma
mightn mightn't mustn mustn't needn needn't shan shan't shouldn shouldn't wasn wasn't weren
weren't won won't wouldn wouldn't
""".split())


TOKEN_TYPES = ("content", "stopword", "punctuation", "special")


# The two groups of paper Fig. 8: content words vs stopwords-and-punctuation.
GROUPS: dict[str, tuple[str, ...]] = {"content": ("content",), "stopword": ("stopword", "punctuation")}


# BPE/SentencePiece word-start markers that a raw token string may carry
_MARKERS = ("\u0120", "\u2581", "\u010a")  # GPT-2 space, SentencePiece space, GPT-2 newline


_APOSTROPHES = "'\u2019"


def word_core(text: str) -> str:
    """The lower-cased word in ``text``: outer non-alphanumerics stripped, inner apostrophes kept.

    ``" Don't,"`` -> ``"don't"``; ``"'s"`` -> ``"s"``; ``" ."`` -> ``""``.
    """
    for m in _MARKERS:
        text = text.replace(m, " ")
    text = text.strip().lower().replace("\u2019", "'")
    start, end = 0, len(text)
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not text[end - 1].isalnum():
        end -= 1
    return text[start:end]


def token_type(text: str, *, special: bool = False) -> str:
    """'content', 'stopword', 'punctuation' or 'special' for one token's decoded text."""
    if special:
        return "special"
    if not any(ch.isalnum() for ch in text):
        return "punctuation"
    core = word_core(text)
    return "stopword" if core in STOPWORDS else "content"


def token_types(tokenizer, ids) -> list[str]:
    """The type of each token id in ``ids`` (one sequence), decoded one token at a time."""
    ids = [int(i) for i in ids]
    specials = set(getattr(tokenizer, "all_special_ids", []) or [])
    return [token_type(tokenizer.decode([i]), special=i in specials) for i in ids]


def group_of(kind: str) -> str | None:
    """'content' or 'stopword' (stopwords and punctuation) for a token type; None for special."""
    for group, kinds in GROUPS.items():
        if kind in kinds:
            return group
    return None


TYPE_GROUPS = tuple(GROUPS)  # ("content", "stopword")

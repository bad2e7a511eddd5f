"""CLUTRR kinship reasoning (Sinha et al., 2019): a loader for the official files and an
offline CLUTRR-style generator of our own, both giving the paper's prompt.

Prompt (paper App. C.1), one record per CSV row::

    Story: [Ava] bought a kite for her son [Ben]. [Ben] and his sister [Cleo] flew it.
    Query: What is the relationship between Ava and Cleo? Answer:

-> target ``" daughter"`` (the relation word with a leading space, so that BPE tokenizers see
one word after ``Answer:``; the word-level tokenizer of the default model ignores the space).
The names in the query are the row's ``query`` tuple ``(head, tail)`` without brackets and in
that order. The story keeps CLUTRR's (and the paper's prompt's) ``[Name]`` brackets unless
``task.clutrr_names=plain`` (or ``auto`` with a pretrained model) drops them; the signal spans
follow. The answer is the row's ``target_text``, CLUTRR's direction: *the tail is the
head's <word>* (query (Ava, Cleo), daughter: Cleo is Ava's daughter). (The paper's own
illustrative example reads the other way round; CLUTRR's data never does, and we keep it.)
Words the model's tokenizer splits (e.g. ``son-in-law`` for GPT-2) follow
``task.multi_token_target``.

Official files (DATA.md §1), from a folder or one file in ``task.path``:

- the Hugging Face ``CLUTRR/v1`` CSV/parquet schema (``,id,story,query,target,target_text,...``,
  ``target`` an int label id), e.g. a config folder with ``train.csv``, ``validation.csv``,
  ``test.csv`` or the parquet export ``<split>/0000.parquet``;
- the original EMNLP-2019 release (``target`` the relation word, ``text_target`` ...), e.g.
  ``data_089907f8/`` with ``1.2,1.3_train.csv`` and ``1.<k>_test.csv``.

A file's set (train / validation / test) is the last word of its name (or its folder's name);
a file named otherwise is grouped by its ``task_split`` column. CSVs are read with
``utf-8-sig`` (the HF ``validation.csv`` starts with a BOM) and the unnamed index column is
dropped; ``neice`` is read as ``niece``.

Splits: ``task_name = task_<noise>.<k>``: ``k`` is the chain length (clause length), noise 1
clean, 2 supporting, 3 irrelevant, 4 disconnected. In-distribution tasks are those of the
train/validation files (``gen_train23_test2to10``: task_1.2 and task_1.3) unless
``task.clutrr_id_tasks`` names them; test rows of those tasks form ``test_id``, all other test
rows ``test_ood`` (longer chains there; other noise types in the ``rob_*`` configs); train and
validation rows of other tasks are left out. Without a
train file (the public snapshot has only validation and test) the validation rows are cut,
seeded by ``task.seed``, into train and validation (``task.validation_fraction``); without a
validation file the train rows are cut the same way. Each record keeps ``k``, ``noise``,
``k_eff`` (shortest head-to-tail path over the chain edges of ``story_edges``; DATA.md §1.6),
``task_name``, ``f_comb``, ``head``, ``tail``, ``relation``, ``id`` and ``signal_spans``: the
character spans ``[start, end)`` in the prompt of the story's bracketed mentions of the people on
the reasoning chain (METHOD §4's kinship-relevant entities; noise people excluded), for mapping to
a tokenizer's token positions with its offsets. ``datasets.load_dataset``
is used only when ``task.hub_dataset`` names a hub dataset (``CLUTRR/v1`` is read from its
``refs/convert/parquet`` branch, as ``datasets>=4`` refuses its loading script).

Generator (``task.clutrr_generate``; DATA.md §3-4): seeded family trees (founder couple,
``generations`` levels, ``children`` per couple, marriage with probability ``p_marry``,
married-in spouses have no parents in the tree); a chain of exactly ``k`` story facts is a
randomised depth-first walk from an anchor over parent/child/sibling/spouse/grandparent/
grandchild edges that never revisits a person and only takes a step whose composition with the
relation so far is a *deterministic* entry of the kinship table of DATA.md §3.2 (so the story
determines the answer); the label is that left fold, worded by the last person's gender, and is
checked against the relation computed directly from the tree. Optional noise facts (one
supporting pair, one irrelevant or one disconnected fact, CLUTRR's task 2/3/4 semantics) never
shorten the head-to-tail path or change the label. Sentences come from our own templates
(``TEMPLATES``; not CLUTRR's crowd-sourced ones) with names from our own lists, shuffled per
story. Output: the HF CSV schema plus the columns ``k_eff`` (shortest head-to-tail path over all
story edges; equal to ``k`` since chains are simple), ``generator_version``, ``seed`` and
``template_ids``, so :func:`load_clutrr_task` reads written files and
:func:`build_clutrr_task` the frames in memory. Train/validation use the in-distribution
lengths, test has ``n_test`` rows at in-distribution lengths and ``n_test`` at the
out-of-distribution lengths (lengths cycle evenly; labels are not balanced).

How the generated labels differ from the official ones: CLUTRR's labels come from its own rule
base, which has two unsound rules, child∘grandparent -> parent and child∘uncle/aunt -> sibling
(DATA.md §3.4): 929 of the 7,866 k=3 rows of the public val/test files carry a label that
contradicts kinship (e.g. "X's daughter's mother's mother" labelled *mother*; truth:
*mother-in-law*). The generator labels by kinship: such ambiguous or unsound compositions are
never produced (no chain contains them), so every generated label is the true relation in the
tree. Its answers include husband, wife, sister-in-law and brother-in-law (label id 21, absent from
CLUTRR's 0..20 map), which never occur as targets in the public files.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from inforidge.config.settings import CLUTRR_NAMES
from inforidge.tasks.base import TaskData, make_record

TABLE_SUFFIXES = (".csv", ".parquet", ".jsonl", ".json")


SET_WORDS = {"train": "train", "trian": "train", "validation": "validation", "valid": "validation",
             "val": "validation", "dev": "validation", "test": "test"}


def read_table(path: str | Path) -> pd.DataFrame:
    """One CSV (utf-8-sig, all strings), parquet or JSON(L) file; unnamed index columns dropped."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        df = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    elif suffix == ".parquet":
        df = pd.read_parquet(path)
    elif suffix in (".jsonl", ".json"):
        df = pd.read_json(path, lines=suffix == ".jsonl", dtype=False)
    else:
        raise ValueError(f"{path}: unsupported file type {suffix!r}; use one of {', '.join(TABLE_SUFFIXES)}")
    drop = [c for c in df.columns if str(c).strip() == "" or str(c).startswith("Unnamed:")]
    df = df.drop(columns=drop)
    df["_where"] = [f"{path} row {i}" for i in range(len(df))]
    return df


def set_of_file(path: Path) -> str | None:
    """train / validation / test from the last word of a file's name, else its folder's name."""
    words = [w for w in re.split(r"[_\-.,\s]+", path.stem.lower()) if w]
    if words and words[-1] in SET_WORDS:
        return SET_WORDS[words[-1]]
    return SET_WORDS.get(path.parent.name.lower())


def read_sets(path: str | Path, set_column: str | None = None) -> dict[str, pd.DataFrame]:
    """Frames by set name from a file or a folder of files (and ``<set>/`` sub-folders).

    A file whose name names no set is grouped by ``set_column`` when it has one, else it is
    returned under the key ``"all"``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"task.path {path} does not exist")
    if path.is_file():
        files = [path]
    else:
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES)
        for sub in sorted(p for p in path.iterdir() if p.is_dir() and p.name.lower() in SET_WORDS):
            files += sorted(p for p in sub.iterdir() if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES)
        if not files:
            subdirs = sorted(p.name for p in path.iterdir() if p.is_dir())
            hint = f"; it has the folders {subdirs[:6]}: point task.path at one of them" if subdirs else ""
            raise FileNotFoundError(
                f"no {'/'.join(TABLE_SUFFIXES)} data files in {path}{hint} "
                "(expected e.g. train.csv, validation.csv, test.csv)"
            )
    sets: dict[str, list[pd.DataFrame]] = {}
    for f in files:
        df = read_table(f)
        name = set_of_file(f)
        if name is None and set_column and set_column in df.columns:
            for value, part in df.groupby(df[set_column].astype(str).str.strip().str.lower(), sort=False, observed=True):
                sets.setdefault(SET_WORDS.get(value, value), []).append(part)
        else:
            sets.setdefault(name or "all", []).append(df)
    return {k: pd.concat(v, ignore_index=True) for k, v in sets.items()}


def hub_sets(name: str, config: str | None) -> dict[str, pd.DataFrame]:
    """Frames by set name from ``datasets.load_dataset`` (only when the user names a hub dataset)."""
    from inforidge._optional import require

    datasets = require("datasets", f"the hub dataset {name!r}")
    kwargs = {"revision": "refs/convert/parquet"} if name.lower() == "clutrr/v1" else {}
    loaded = datasets.load_dataset(name, config, **kwargs)
    out = {}
    for split in loaded:
        df = loaded[split].to_pandas()
        df["_where"] = [f"{name}:{split} row {i}" for i in range(len(df))]
        out[SET_WORDS.get(split, split)] = df
    return out


def seeded_cut(n: int, fraction: float, seed: int, name: str = "task.validation_fraction") -> np.ndarray:
    """Boolean mask of ``round(fraction * n)`` (at least 1, at most n - 1) rows drawn with ``seed``."""
    if not 0 < fraction < 1:
        raise ValueError(f"{name} must be in (0, 1); got {fraction}")
    if n < 2:
        raise ValueError(f"{n} row(s) cannot be cut into two sets ({name}); give more rows or a file per set")
    m = min(n - 1, max(1, round(fraction * n)))
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(seed).permutation(n)[:m]] = True
    return mask


def words_of(records: Iterable[dict]) -> list[str]:
    """Every whitespace-separated word of the prompts and targets (a word-level vocabulary)."""
    return sorted({w for r in records for w in (r["prompt"] + " " + r["target"]).split()})


def file_digest(path: str | Path) -> str:
    """sha256 over the data files under ``path`` (names and bytes), for the run's provenance."""
    path = Path(path)
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix.lower() in TABLE_SUFFIXES)
    for f in files:
        h.update(str(f.relative_to(path.parent if path.is_file() else path)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


WORDS = {  # gender-neutral type -> (male word, female word); "Y is X's <word>"
    "parent": ("father", "mother"), "child": ("son", "daughter"), "sibling": ("brother", "sister"),
    "spouse": ("husband", "wife"), "grandparent": ("grandfather", "grandmother"),
    "grandchild": ("grandson", "granddaughter"), "pibling": ("uncle", "aunt"), "nibling": ("nephew", "niece"),
    "parent-in-law": ("father-in-law", "mother-in-law"), "child-in-law": ("son-in-law", "daughter-in-law"),
    "sibling-in-law": ("brother-in-law", "sister-in-law"),
}


TYPE_OF_WORD = {w: t for t, pair in WORDS.items() for w in pair}


# CLUTRR/v1's int labels (HF card), plus brother-in-law, which its map lacks.
LABEL_IDS = {w: i for i, w in enumerate((
    "aunt", "son-in-law", "grandfather", "brother", "sister", "father", "mother", "grandmother", "uncle",
    "daughter-in-law", "grandson", "granddaughter", "father-in-law", "mother-in-law", "nephew", "son",
    "daughter", "niece", "husband", "wife", "sister-in-law", "brother-in-law",
))}


WORD_OF_LABEL_ID = {i: w for w, i in LABEL_IDS.items()}


NOISE_CODES = {"none": 1, "supporting": 2, "irrelevant": 3, "disconnected": 4}


PROMPT = "Story: {story}\nQuery: What is the relationship between {head} and {tail}? Answer:"


def clutrr_prompt(story: str, head: str, tail: str) -> str:
    """The paper's CLUTRR prompt for a story and the query pair (names without brackets)."""
    return PROMPT.format(story=story.strip(), head=head, tail=tail)


def relation_word(word: str) -> str:
    """A relation word normalised: lower case, stripped, CLUTRR's ``neice`` read as ``niece``."""
    word = str(word).strip().lower()
    return "niece" if word == "neice" else word


_TASK_NAME = re.compile(r"^task_(\d+)\.(\d+)$")


def parse_task_name(name: str, where: str = "") -> tuple[int, int]:
    """(noise, k) of ``task_<noise>.<k>``; accepts ``<noise>.<k>`` too."""
    name = str(name).strip()
    m = _TASK_NAME.match(name if name.startswith("task_") else f"task_{name}")
    if not m:
        raise ValueError(f"{where}: task_name must look like task_1.3 (noise.chain length); got {name!r}")
    return int(m.group(1)), int(m.group(2))


def normalise_task_name(name: str) -> str:
    noise, k = parse_task_name(name, "task.clutrr_id_tasks")
    return f"task_{noise}.{k}"


def _literal(value, column: str, where: str):
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError) as e:
        raise ValueError(f"{where}: column {column} is not a Python literal: {value[:80]!r}") from e


def path_length(edges: Sequence[Sequence[int]], source: int, target: int) -> int | None:
    """Shortest number of (undirected) edges from ``source`` to ``target``; None if unreachable."""
    adjacent: dict[int, set[int]] = {}
    for a, b in edges:
        adjacent.setdefault(int(a), set()).add(int(b))
        adjacent.setdefault(int(b), set()).add(int(a))
    seen, todo = {source: 0}, deque([source])
    while todo:
        x = todo.popleft()
        if x == target:
            return seen[x]
        for y in adjacent.get(x, ()):
            if y not in seen:
                seen[y] = seen[x] + 1
                todo.append(y)
    return None


REQUIRED_COLUMNS = ("story", "query", "task_name")


_MENTION = re.compile(r"\[([^\[\]]+)\]")


def story_names(story: str, names: str = "brackets") -> tuple[str, list[tuple[str, int, int]]]:
    """The story with its ``[Name]`` mentions as ``names`` says ('brackets': kept, 'plain': the
    brackets dropped) and each mention as (name, start, end), the character span of the mention
    as written (with its brackets under 'brackets') in the returned story."""
    if names not in CLUTRR_NAMES:
        raise ValueError(f"names must be one of {CLUTRR_NAMES}; got {names!r}")
    parts, mentions, at, pos = [], [], 0, 0
    for m in _MENTION.finditer(story):
        shown = m.group(0) if names == "brackets" else m.group(1)
        parts += [story[pos:m.start()], shown]
        at += m.start() - pos
        mentions.append((m.group(1), at, at + len(shown)))
        at += len(shown)
        pos = m.end()
    parts.append(story[pos:])
    return "".join(parts), mentions


def clutrr_names_for(requested: str, pretrained: bool) -> str:
    """``task.clutrr_names`` resolved: 'auto' is plain for a pretrained model, brackets from scratch."""
    if requested == "auto":
        return "plain" if pretrained else "brackets"
    if requested not in CLUTRR_NAMES:
        raise ValueError(f"task.clutrr_names must be 'auto' or one of {CLUTRR_NAMES}; got {requested!r}")
    return requested


def clutrr_record(row: dict, split: str, names: str = "brackets") -> dict:
    """One official-schema row (HF or original release) as a prompt/target record; ``names``:
    how the story writes its people (:func:`story_names`)."""
    where = row.get("_where", "row")
    missing = [c for c in REQUIRED_COLUMNS if c not in row]
    if "target_text" not in row and "target" not in row:
        missing.append("target_text (or target)")
    if missing:
        raise ValueError(f"{where}: not a CLUTRR row; missing column(s) {', '.join(missing)}")
    query = _literal(row["query"], "query", where)
    if not isinstance(query, (tuple, list)) or len(query) != 2:
        raise ValueError(f"{where}: query must be a pair like ('Ann', 'Bob'); got {row['query']!r}")
    head, tail = (str(x) for x in query)
    # HF: target_text is the word (target an int id); original release: target is the word.
    word = relation_word(row["target_text"] if "target_text" in row else row["target"])
    if word.isdigit() and int(word) in WORD_OF_LABEL_ID:  # an int label id alone: CLUTRR/v1's map
        word = WORD_OF_LABEL_ID[int(word)]
    if not word or word.isdigit():
        raise ValueError(f"{where}: no relation word in target_text/target ({word!r})")
    noise, k = parse_task_name(row["task_name"], where)
    k_eff = None
    if row.get("story_edges") not in (None, ""):
        edges = _literal(row["story_edges"], "story_edges", where)
        end = _literal(row.get("query_edge") or f"(0, {k})", "query_edge", where)
        k_eff = path_length(list(edges)[:k], int(end[0]), int(end[1]))
    story, mentions = story_names(str(row["story"]).strip(), names)
    people = _chain_people(row, k) or {head, tail}
    start = PROMPT.index("{story}")
    spans = [[start + a, start + b] for name, a, b in mentions if name in people]
    return make_record(
        clutrr_prompt(story, head, tail), " " + word, split,
        id=str(row.get("id", "")), task_name=f"task_{noise}.{k}", k=k, noise=noise, k_eff=k_eff,
        f_comb=str(row.get("f_comb", "")), head=head, tail=tail, relation=word, signal_spans=spans,
    )


def _chain_people(row: dict, k: int) -> set[str] | None:
    """Names of the people on the reasoning chain (nodes of the first k story edges), if known."""
    try:
        names = [part.rsplit(":", 1)[0].strip() for part in str(row["genders"]).split(",")]
        edges = ast.literal_eval(row["story_edges"]) if isinstance(row["story_edges"], str) else row["story_edges"]
        return {names[int(i)] for edge in list(edges)[:k] for i in edge}
    except (KeyError, ValueError, SyntaxError, IndexError, TypeError):
        return None


def clutrr_task_from_sets(
    sets: dict[str, pd.DataFrame], *, id_tasks: Sequence[str] | None = None, seed: int = 0,
    validation_fraction: float = 0.1, name: str = "clutrr", metadata: dict | None = None, names: str = "brackets",
) -> TaskData:
    """train / validation / test_id / test_ood records from frames by set (module doc: Splits);
    ``names``: 'brackets' or 'plain' story names (:func:`story_names`)."""
    sets = dict(sets)
    where = (metadata or {}).get("source", "the CLUTRR data")
    for s, df in sets.items():
        missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
        missing += [] if {"target_text", "target"} & set(df.columns) else ["target_text"]
        if missing:
            source = df["_where"].iloc[0].rsplit(" row ", 1)[0] if len(df) and "_where" in df else where
            raise ValueError(f"{source} ({s}): not the CLUTRR schema; missing column(s) {', '.join(missing)}")
    if "all" in sets:
        raise ValueError(
            f"{where}: cannot tell which rows are train, validation or test: name files train/validation/test "
            "(or *_train.csv, *_test.csv) or give them a task_split column"
        )
    unknown = sorted(set(sets) - {"train", "validation", "test"})
    if unknown:
        raise ValueError(f"{where}: unknown set(s) {unknown}; expected train, validation and test")
    if "test" not in sets:
        raise ValueError(f"{where}: no test rows (a test file or task_split=test) to measure on")
    rows = {s: df.to_dict("records") for s, df in sets.items()}
    for s, rs in rows.items():
        for r in rs:
            if "task_name" in r:
                noise, k = parse_task_name(r["task_name"], r.get("_where", s))
                r["task_name"] = f"task_{noise}.{k}"
    if id_tasks:
        chosen = {normalise_task_name(t) for t in id_tasks}
        id_from = "task.clutrr_id_tasks"
    else:
        chosen = {r["task_name"] for s in ("train", "validation") for r in rows.get(s, [])}
        id_from = "tasks of the train/validation rows"
        if not chosen:
            raise ValueError(
                f"{where}: no train or validation rows to learn from; add a train or validation file "
                "(or generate data with task.clutrr_generate=true)"
            )
    fit = {s: [r for r in rows.get(s, []) if r["task_name"] in chosen] for s in ("train", "validation")}
    split_from = "files"
    if not fit["train"] or not fit["validation"]:
        have = "train" if fit["train"] else "validation"
        if not fit[have]:
            raise ValueError(f"{where}: no train or validation row belongs to the in-distribution tasks {sorted(chosen)}")
        pool = fit[have]
        mask = seeded_cut(len(pool), validation_fraction, seed)
        fit = {"train": [r for r, m in zip(pool, mask, strict=True) if not m],
               "validation": [r for r, m in zip(pool, mask, strict=True) if m]}
        split_from = f"{have} rows cut into train/validation (seed {seed})"
    splits = {
        "train": [clutrr_record(r, "id", names) for r in fit["train"]],
        "validation": [clutrr_record(r, "id", names) for r in fit["validation"]],
        "test_id": [clutrr_record(r, "id", names) for r in rows["test"] if r["task_name"] in chosen],
        "test_ood": [clutrr_record(r, "ood", names) for r in rows["test"] if r["task_name"] not in chosen],
    }
    present = sorted({r["task_name"] for r in rows["test"]})
    for s in ("test_id", "test_ood"):
        if not splits[s]:
            raise ValueError(
                f"{where}: split {s} is empty: the test rows have the tasks {present} and the in-distribution "
                f"tasks are {sorted(chosen)} ({id_from}); set task.clutrr_id_tasks so both are non-empty"
            )
    all_records = [r for rs in splits.values() for r in rs]
    return TaskData(
        name=name, splits=splits, vocabulary=words_of(all_records),
        metadata={**(metadata or {}), "id_tasks": sorted(chosen), "id_tasks_from": id_from,
                  "split_from": split_from, "names": names},
    )


def load_clutrr_task(
    path: str | Path, *, id_tasks: Sequence[str] | None = None, seed: int = 0, validation_fraction: float = 0.1,
    names: str = "brackets",
) -> TaskData:
    """The CLUTRR task from official files (a config folder or one file; module doc)."""
    path = Path(path)
    sets = read_sets(path, set_column="task_split")
    return clutrr_task_from_sets(
        sets, id_tasks=id_tasks, seed=seed, validation_fraction=validation_fraction, name=f"clutrr:{path.name}",
        names=names,
        metadata={"source": str(path), "sha256": file_digest(path)},
    )


GENERATOR_VERSION = "inforidge-clutrr-1"


STEP_TYPES = ("parent", "child", "sibling", "spouse", "grandparent", "grandchild")


_BY_MARRIAGE = "pibling-by-marriage"  # internal fold state; worded uncle/aunt


# "B is A's R1, C is B's R2 => C is A's R": the deterministic entries of DATA.md §3.2 for the
# story-edge types above (pibling states only arise inside the fold, where their kind is known).
COMPOSE = {
    ("parent", "parent"): "grandparent", ("parent", "child"): "sibling", ("parent", "sibling"): "pibling",
    ("parent", "spouse"): "parent",
    ("child", "parent"): "spouse", ("child", "child"): "grandchild", ("child", "sibling"): "child",
    ("child", "spouse"): "child-in-law",
    ("sibling", "parent"): "parent", ("sibling", "child"): "nibling", ("sibling", "sibling"): "sibling",
    ("sibling", "spouse"): "sibling-in-law", ("sibling", "grandparent"): "grandparent",
    ("spouse", "parent"): "parent-in-law", ("spouse", "child"): "child", ("spouse", "sibling"): "sibling-in-law",
    ("spouse", "grandchild"): "grandchild",
    ("grandparent", "spouse"): "grandparent",
    ("grandchild", "sibling"): "grandchild",
    ("pibling", "parent"): "grandparent", ("pibling", "spouse"): _BY_MARRIAGE,
    (_BY_MARRIAGE, "spouse"): "pibling",
    ("nibling", "sibling"): "nibling",
    ("parent-in-law", "spouse"): "parent-in-law",
    ("child-in-law", "child"): "grandchild", ("child-in-law", "spouse"): "child",
    ("sibling-in-law", "child"): "nibling",
}


@dataclass
class FamilyTree:
    """People 0..n-1: gender ('male'/'female'), their two parents (or none), spouse, children."""

    gender: list[str]
    parents: list[tuple[int, ...]]
    spouse: list[int | None]
    children: list[list[int]]

    def __len__(self) -> int:
        return len(self.gender)

    def siblings(self, x: int) -> list[int]:
        return [c for c in self.children[self.parents[x][0]] if c != x] if self.parents[x] else []

    def neighbours(self, x: int, step: str) -> list[int]:
        """People y with "y is x's <step>"."""
        if step == "parent":
            return list(self.parents[x])
        if step == "child":
            return list(self.children[x])
        if step == "sibling":
            return self.siblings(x)
        if step == "spouse":
            return [] if self.spouse[x] is None else [self.spouse[x]]
        if step == "grandparent":
            return [g for p in self.parents[x] for g in self.parents[p]]
        if step == "grandchild":
            return [g for c in self.children[x] for g in self.children[c]]
        raise ValueError(f"unknown step type {step!r}")


def sample_family_tree(rng: np.random.Generator, generations: int = 4, children: tuple[int, int] = (3, 6),
                       p_marry: float = 0.9) -> FamilyTree:
    """A founder couple and ``generations - 1`` generations of children; the last has none."""
    tree = FamilyTree([], [], [], [])

    def add(gender: str, parents: tuple[int, ...] = ()) -> int:
        tree.gender.append(gender)
        tree.parents.append(parents)
        tree.spouse.append(None)
        tree.children.append([])
        return len(tree.gender) - 1

    def marry(x: int) -> int:
        s = add("female" if tree.gender[x] == "male" else "male")
        tree.spouse[x], tree.spouse[s] = s, x
        return s

    root = add(str(rng.choice(["male", "female"])))
    couples = [(root, marry(root))]
    for level in range(1, generations):
        nxt = []
        for a, b in couples:
            for _ in range(int(rng.integers(children[0], children[1] + 1))):
                c = add(str(rng.choice(["male", "female"])), (a, b))
                tree.children[a].append(c)
                tree.children[b].append(c)
                if rng.random() < p_marry:
                    s = marry(c)
                    if level < generations - 1:
                        nxt.append((c, s))
        couples = nxt
    return tree


def kinship(tree: FamilyTree, a: int, c: int) -> str | None:
    """The relation type of c to a ("c is a's <type>") from parent/spouse links alone, or None."""
    par, sp = tree.parents, tree.spouse

    def is_pibling(x: int, of: int) -> bool:  # x is a sibling (or a sibling's spouse) of a parent of `of`
        return any(x in tree.siblings(p) or (sp[x] is not None and sp[x] in tree.siblings(p)) for p in par[of])

    if a == c:
        return None
    if sp[a] == c:
        return "spouse"
    if c in par[a]:
        return "parent"
    if a in par[c]:
        return "child"
    if c in tree.siblings(a):
        return "sibling"
    if any(c in par[p] for p in par[a]):
        return "grandparent"
    if any(a in par[p] for p in par[c]):
        return "grandchild"
    if is_pibling(c, a):
        return "pibling"
    if is_pibling(a, c):
        return "nibling"
    if sp[a] is not None and c in par[sp[a]]:
        return "parent-in-law"
    if sp[c] is not None and a in par[sp[c]]:
        return "child-in-law"
    if (sp[a] is not None and c in tree.siblings(sp[a])) or (sp[c] is not None and sp[c] in tree.siblings(a)):
        return "sibling-in-law"
    return None


def word_for(relation: str, gender: str) -> str:
    kind = "pibling" if relation == _BY_MARRIAGE else relation
    return WORDS[kind][0 if gender == "male" else 1]


# Our own sentence templates: {Y} is {X}'s {w}; {xp} is X's possessive pronoun.
TEMPLATES = (
    "{Y} is {X}'s {w}.",
    "{X} has a {w} called {Y}.",
    "{X} went fishing with {xp} {w} {Y}.",
    "{X} and {xp} {w} {Y} painted the fence together.",
    "{X} phoned {xp} {w} {Y} on Sunday.",
    "On Friday {X} had lunch with {xp} {w} {Y}.",
)


MALE_NAMES = (
    "Aaron Adrian Albert Alfred Andrew Arthur Benjamin Bernard Caleb Calvin Carl Cedric Clarence Colin Daniel "
    "Dennis Derek Edgar Edwin Elliot Ethan Felix Floyd Frank Gavin Gerald Gordon Harold Henry Hugo Ian Isaac "
    "Jasper Jerome Joel Julian Keith Kevin Lawrence Leon Lionel Louis Malcolm Martin Milo Nathan Neil Oliver "
    "Oscar Owen Patrick Philip Quentin Ralph Raymond Roland Rufus Samuel Simon Stanley Theo Victor Walter"
).split()


FEMALE_NAMES = (
    "Abigail Agnes Alice Amelia Beatrice Bella Bianca Carla Carmen Celia Clara Daisy Delia Diana Edith Elena "
    "Eliza Emma Esther Fiona Flora Gemma Greta Hannah Hazel Helena Ingrid Irene Isla Ivy Jane Jessica Joan "
    "Julia Karen Laura Leah Lena Lila Lucy Mabel Maria Maya Miriam Nadia Nina Nora Olive Paula Pearl Rachel "
    "Rosa Ruby Sara Selma Sonia Stella Tessa Vera Wendy"
).split()


@dataclass
class Puzzle:
    """One generated story: the tree, the chain (tree ids, head first), its step types, the fold
    state after each step (the last is the label's type), noise edges (x, y, type: y is x's type)."""

    tree: FamilyTree
    chain: list[int]
    steps: list[str]
    states: list[str]
    noise_edges: list[tuple[int, int, str]]

    @property
    def label(self) -> str:
        return word_for(self.states[-1], self.tree.gender[self.chain[-1]])


def find_chain(tree: FamilyTree, k: int, rng: np.random.Generator, budget: int = 3000):
    """A simple chain of k deterministic steps from a random anchor (randomised DFS), or None."""
    anchor = int(rng.integers(len(tree)))
    path, on_path, steps, states = [anchor], {anchor}, [], []
    expansions = 0

    def dfs(x: int, state: str | None) -> bool:
        nonlocal expansions
        if len(steps) == k:
            return True
        expansions += 1
        if expansions > budget:
            return False
        options = [(s, y) for s in STEP_TYPES for y in tree.neighbours(x, s)
                   if y not in on_path and (state is None or (state, s) in COMPOSE)]
        for i in rng.permutation(len(options)):
            s, y = options[i]
            path.append(y)
            on_path.add(y)
            steps.append(s)
            states.append(s if state is None else COMPOSE[(state, s)])
            if dfs(y, states[-1]):
                return True
            path.pop()
            on_path.discard(y)
            steps.pop()
            states.pop()
        return False

    return (path, steps, states) if dfs(anchor, None) else None


def _noise_edges(tree: FamilyTree, chain: list[int], steps: list[str], noise: str,
                 rng: np.random.Generator) -> list[tuple[int, int, str]] | None:
    on_chain = set(chain)
    if noise == "none":
        return []
    if noise == "supporting":  # X -t1-> D -t2-> Y with t1∘t2 = the chain step X -> Y, D off the chain
        for i in rng.permutation(len(steps)):
            x, y = chain[i], chain[i + 1]
            options = []
            for t1 in STEP_TYPES:
                for d in tree.neighbours(x, t1):
                    t2 = kinship(tree, d, y)
                    if d not in on_chain and t2 in STEP_TYPES and COMPOSE.get((t1, t2)) == steps[i]:
                        options.append((d, t1, t2))
            if options:
                d, t1, t2 = options[int(rng.integers(len(options)))]
                return [(x, d, t1), (d, y, t2)]
        return None
    if noise == "irrelevant":  # one fact from a chain person to someone off the chain
        starts = chain
    elif noise == "disconnected":  # one fact between two people off the chain
        starts = [p for p in range(len(tree)) if p not in on_chain]
    else:
        raise ValueError(f"noise must be one of {sorted(NOISE_CODES)}; got {noise!r}")
    for _ in range(50):
        x = int(starts[int(rng.integers(len(starts)))])
        options = [(y, s) for s in STEP_TYPES for y in tree.neighbours(x, s) if y not in on_chain]
        if options:
            y, s = options[int(rng.integers(len(options)))]
            return [(x, y, s)]
    return None


def sample_puzzle(rng: np.random.Generator, k: int, noise: str = "none", *, generations: int = 4,
                  children: tuple[int, int] = (3, 6), p_marry: float = 0.9, attempts: int = 200,
                  tree: FamilyTree | None = None) -> Puzzle:
    """A puzzle with a chain of exactly ``k`` facts (a fresh tree every 10 failed attempts)."""
    for attempt in range(attempts):
        if tree is None or (attempt and attempt % 10 == 0):
            tree = sample_family_tree(rng, generations, children, p_marry)
        found = find_chain(tree, k, rng)
        if found is None:
            continue
        chain, steps, states = found
        edges = _noise_edges(tree, chain, steps, noise, rng)
        if edges is None:
            continue
        truth = kinship(tree, chain[0], chain[-1])
        fold = "pibling" if states[-1] == _BY_MARRIAGE else states[-1]
        if truth != fold:  # the table and the tree disagree: a bug, never data
            raise AssertionError(f"generator: fold {steps} -> {fold} but the tree says {truth}")
        return Puzzle(tree, chain, steps, states, edges)
    raise ValueError(
        f"could not build a chain of {k} facts in {attempts} attempts; raise the children per couple "
        f"(now {children}) or lower the chain length"
    )


def puzzle_row(p: Puzzle, rng: np.random.Generator, *, set_name: str, row_id: str, noise: str, seed: int) -> dict:
    """The puzzle in the HF CLUTRR CSV schema plus k_eff, generator_version, seed, template_ids."""
    tree, chain, k = p.tree, p.chain, len(p.steps)
    people = list(chain)
    for x, y, _ in p.noise_edges:
        people += [q for q in (x, y) if q not in people]
    pools = {"male": list(MALE_NAMES), "female": list(FEMALE_NAMES)}
    names = {}
    for q in people:
        pool = pools[tree.gender[q]]
        names[q] = pool.pop(int(rng.integers(len(pool))))
    node = {q: i for i, q in enumerate(people)}
    facts = [(chain[i], chain[i + 1], s) for i, s in enumerate(p.steps)] + p.noise_edges
    sentences, template_ids = [], []
    for x, y, s in facts:
        t = int(rng.integers(len(TEMPLATES)))
        template_ids.append(t)
        sentences.append(TEMPLATES[t].format(
            X=f"[{names[x]}]", Y=f"[{names[y]}]", w=word_for(s, tree.gender[y]),
            xp="his" if tree.gender[x] == "male" else "her"))
    order = rng.permutation(len(sentences))
    edge_words = [word_for(s, tree.gender[chain[i + 1]]) for i, s in enumerate(p.steps)]
    head, tail, label = names[chain[0]], names[chain[-1]], p.label
    proof = []
    for j in range(k - 1, 0, -1):
        here, prev = chain[j + 1], chain[j]
        proof.append({(head, word_for(p.states[j], tree.gender[here]), names[here]): [
            (head, word_for(p.states[j - 1], tree.gender[prev]), names[prev]),
            (names[prev], edge_words[j], names[here])]})
    story_edges = [(node[x], node[y]) for x, y, _ in facts]
    return {
        "id": row_id, "story": " ".join(sentences[i] for i in order), "query": repr((head, tail)),
        "target": LABEL_IDS[label], "target_text": label, "clean_story": " ".join(sentences[:k]),
        "proof_state": repr(proof), "f_comb": "-".join(edge_words), "task_name": f"task_{NOISE_CODES[noise]}.{k}",
        "story_edges": repr(story_edges), "edge_types": repr(edge_words), "query_edge": repr((0, k)),
        "genders": ",".join(f"{names[q]}:{tree.gender[q]}" for q in people), "task_split": set_name,
        "k_eff": path_length(story_edges, 0, k), "generator_version": GENERATOR_VERSION, "seed": seed,
        "template_ids": repr(template_ids),
    }


@dataclass(frozen=True)
class ClutrrGeneratorSpec:
    """Settings of the CLUTRR-style generator (module doc)."""

    n_train: int = 10_000
    n_validation: int = 2_000
    n_test: int = 2_000
    id_lengths: tuple[int, ...] = (2, 3)
    ood_lengths: tuple[int, ...] = (4, 5, 6, 7, 8, 9, 10)
    noise: str = "none"
    generations: int = 4
    children: tuple[int, int] = (3, 6)
    p_marry: float = 0.9
    seed: int = 0

    def __post_init__(self) -> None:
        if self.noise not in NOISE_CODES:
            raise ValueError(f"task.clutrr_noise must be one of {list(NOISE_CODES)}; got {self.noise!r}")
        for name in ("id_lengths", "ood_lengths"):
            lengths = getattr(self, name)
            if not lengths or any(int(k) < 2 for k in lengths):
                raise ValueError(f"task.clutrr_{name} must be a non-empty list of chain lengths >= 2; got {list(lengths)}")
        both = sorted(set(self.id_lengths) & set(self.ood_lengths))
        if both:
            raise ValueError(f"chain lengths {both} are both in- and out-of-distribution; keep clutrr_id_lengths "
                             "and clutrr_ood_lengths apart")
        for name in ("n_train", "n_validation", "n_test"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        if not (1 <= self.children[0] <= self.children[1]) or self.generations < 2:
            raise ValueError("the generator needs generations >= 2 and 1 <= min children <= max children")


def generate_clutrr_sets(spec: ClutrrGeneratorSpec | None = None) -> dict[str, pd.DataFrame]:
    """Seeded train / validation / test frames in the HF CLUTRR schema (module doc)."""
    spec = spec or ClutrrGeneratorSpec()
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(spec.seed).spawn(4)]
    plan = [("train", spec.n_train, spec.id_lengths, rngs[0]),
            ("validation", spec.n_validation, spec.id_lengths, rngs[1]),
            ("test", spec.n_test, spec.id_lengths, rngs[2]),
            ("test", spec.n_test, spec.ood_lengths, rngs[3])]
    out: dict[str, list[dict]] = {}
    for set_name, n, lengths, rng in plan:
        rows = out.setdefault(set_name, [])
        tree = None
        for i in range(n):
            if i % 16 == 0:  # a fresh tree now and then; names are drawn per story
                tree = sample_family_tree(rng, spec.generations, spec.children, spec.p_marry)
            p = sample_puzzle(rng, int(lengths[i % len(lengths)]), spec.noise, generations=spec.generations,
                              children=spec.children, p_marry=spec.p_marry, tree=tree)
            tree = p.tree
            rows.append(puzzle_row(p, rng, set_name=set_name, row_id=f"{set_name}-{len(rows):06d}",
                                   noise=spec.noise, seed=spec.seed))
    return {s: pd.DataFrame(rows) for s, rows in out.items()}


def write_clutrr_files(folder: str | Path, spec: ClutrrGeneratorSpec | None = None) -> list[Path]:
    """Generate and write ``train.csv``, ``validation.csv``, ``test.csv`` (HF layout, index column)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for set_name, df in generate_clutrr_sets(spec).items():
        path = folder / f"{set_name}.csv"
        df.to_csv(path, index=True)
        paths.append(path)
    return paths


def build_clutrr_task(t, *, pretrained: bool = False) -> TaskData:
    """The CLUTRR task from a ``TaskConfig``: generated, from a hub dataset, or from task.path.
    ``pretrained``: whether the model is a pretrained LM (``task.clutrr_names=auto`` then drops
    the brackets)."""
    common = {"id_tasks": t.clutrr_id_tasks, "seed": t.seed, "validation_fraction": t.validation_fraction,
              "names": clutrr_names_for(getattr(t, "clutrr_names", "brackets"), pretrained)}
    if t.clutrr_generate:
        spec = ClutrrGeneratorSpec(
            n_train=t.n_train, n_validation=t.n_validation, n_test=t.n_test,
            id_lengths=tuple(t.clutrr_id_lengths), ood_lengths=tuple(t.clutrr_ood_lengths),
            noise=t.clutrr_noise, seed=t.seed,
        )
        return clutrr_task_from_sets(
            generate_clutrr_sets(spec), **common, name="clutrr:generated",
            metadata={"source": f"generator {GENERATOR_VERSION} (seed {t.seed})", "generator": spec.__dict__},
        )
    if t.hub_dataset:
        return clutrr_task_from_sets(
            hub_sets(t.hub_dataset, t.hub_config), **common, name=f"clutrr:{t.hub_dataset}",
            metadata={"source": f"hub {t.hub_dataset} {t.hub_config or ''}".strip()},
        )
    if not t.path:
        raise ValueError(
            "task.name=clutrr needs task.path (a CLUTRR config folder or file), task.clutrr_generate=true, "
            "or task.hub_dataset (e.g. CLUTRR/v1 with task.hub_config=gen_train23_test2to10)"
        )
    return load_clutrr_task(t.path, **common)

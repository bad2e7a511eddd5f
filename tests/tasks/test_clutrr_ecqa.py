"""CLUTRR and ECQA: loaders for the official schemas (own fixtures), the CLUTRR-style generator
checked against an independent kinship computation, the real CLUTRR files when present, and a
run end to end on generated data."""

import ast
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from inforidge.config.loading import describe_fields, load_config
from inforidge.pipelines.run import run
from inforidge.tasks.clutrr import (
    WORDS,
    ClutrrGeneratorSpec,
    generate_clutrr_sets,
    load_clutrr_task,
    sample_puzzle,
    write_clutrr_files,
)
from inforidge.tasks.ecqa import load_ecqa_task
from inforidge.tasks.registry import build_task

# The real CLUTRR CSVs live in shared/ beside the checkout (never copied into the project).
REAL = Path(os.environ.get("INFORIDGE_CLUTRR_DIR", Path(__file__).resolve().parents[3] / "shared" / "data" / "clutrr"))
HF_COLUMNS = ["id", "story", "query", "target", "target_text", "clean_story", "proof_state", "f_comb", "task_name",
              "story_edges", "edge_types", "query_edge", "genders", "task_split"]


# ------------------------------------------------------------------------------ CLUTRR fixtures

def hf_row(i, story, head, tail, word, f_comb, task, set_name, edges=None, label_id=0):
    k = int(task.split(".")[1])
    edges = edges or [(j, j + 1) for j in range(k)]
    return {"id": f"fx-{i:04d}", "story": story, "query": repr((head, tail)), "target": label_id,
            "target_text": word, "clean_story": story, "proof_state": "[]", "f_comb": f_comb, "task_name": task,
            "story_edges": repr(edges), "edge_types": repr(f_comb.split("-")), "query_edge": repr((0, edges[k - 1][1])),
            "genders": "", "task_split": set_name}


AVA = ("[Ava] bought a kite for her son [Ben]. [Ben] and his sister [Cleo] flew it in the park.",
       "Ava", "Cleo", "daughter", "son-sister")
HAL = ("[Hal] is [Eve]'s brother. [Hal] has a son named [Ian]. [Jon] is [Ian]'s brother.",
       "Eve", "Jon", "nephew", "brother-son-brother")


def write_hf_folder(folder: Path) -> Path:
    folder.mkdir()
    rows = {"train": [], "validation": [], "test": []}
    for s in rows:
        for i in range(4):
            rows[s].append(hf_row(i, *AVA, "task_1.2", s, label_id=16))
            rows[s].append(hf_row(i + 10, *HAL, "task_1.3", s, label_id=14))
    long = "[Al] is [Bo]'s son. " * 2
    rows["test"] += [
        hf_row(50, long, "Bo", "Al", "son", "son-brother-father-son", "task_1.4", "test",
               edges=[(0, 1), (1, 2), (2, 3), (3, 4)]),
        # a revisiting chain: head -> mother -> head -> brother -> ... (k=6, shortest path 4)
        hf_row(51, long, "Bo", "Al", "uncle", "mother-son-brother-father-son-brother", "task_1.6", "test",
               edges=[(0, 1), (1, 0), (0, 2), (2, 3), (3, 4), (4, 5)]),
        hf_row(52, AVA[0] + " [Cleo] has a brother [Dan].", *AVA[1:], "task_2.3", "test",
               edges=[(0, 1), (1, 2), (2, 3), (3, 4), (4, 2)]),
    ]
    for s, rs in rows.items():
        # validation.csv starts with a BOM, as the HF file does
        pd.DataFrame(rs, columns=HF_COLUMNS).to_csv(folder / f"{s}.csv", encoding="utf-8-sig" if s == "validation"
                                                     else "utf-8")
    return folder


def test_hf_schema_gives_the_papers_prompt_and_splits_by_task(tmp_path):
    folder = write_hf_folder(tmp_path / "gen_fixture")
    assert (folder / "validation.csv").read_bytes()[:4] == b"\xef\xbb\xbf,"
    task = load_clutrr_task(folder)
    first = task.splits["test_id"][0]
    assert first["prompt"] == (
        "Story: [Ava] bought a kite for her son [Ben]. [Ben] and his sister [Cleo] flew it in the park.\n"
        "Query: What is the relationship between Ava and Cleo? Answer:")
    assert first["target"] == " daughter" and first["split"] == "id"
    assert (first["k"], first["noise"], first["k_eff"], first["head"], first["relation"]) == (2, 1, 2, "Ava", "daughter")
    # without a genders column the signal spans fall back to the query pair
    assert [first["prompt"][a:b] for a, b in first["signal_spans"]] == ["[Ava]", "[Cleo]"]
    assert {r["task_name"] for r in task.splits["test_id"]} == {"task_1.2", "task_1.3"}
    ood = {r["task_name"]: r for r in task.splits["test_ood"]}
    assert set(ood) == {"task_1.4", "task_1.6", "task_2.3"} and {r["split"] for r in ood.values()} == {"ood"}
    assert (ood["task_1.6"]["k"], ood["task_1.6"]["k_eff"]) == (6, 4), "a revisiting chain is shorter than k"
    assert (ood["task_2.3"]["k"], ood["task_2.3"]["k_eff"]) == (3, 3), "noise edges are not chain edges"
    assert len(task.splits["train"]) == 8 and len(task.splits["validation"]) == 8
    assert task.metadata["id_tasks"] == ["task_1.2", "task_1.3"] and "nephew" in task.vocabulary
    # Naming the in-distribution tasks moves task_1.3 to OOD and drops it from training.
    narrow = load_clutrr_task(folder, id_tasks=["1.2"])
    assert {r["k"] for r in narrow.splits["train"]} == {2}
    assert "task_1.3" in {r["task_name"] for r in narrow.splits["test_ood"]}
    with pytest.raises(ValueError, match="split test_ood is empty"):
        load_clutrr_task(folder, id_tasks=["1.2", "1.3", "1.4", "1.6", "2.3"])
    # The HF parquet export layout <split>/0000.parquet (int target) gives the same records.
    exported = tmp_path / "parquet_export"
    for s in ("train", "validation", "test"):
        (exported / s).mkdir(parents=True)
        df = pd.read_csv(folder / f"{s}.csv", index_col=0, encoding="utf-8-sig", keep_default_na=False)
        df.astype({"target": "int32"}).to_parquet(exported / s / "0000.parquet")
    again = load_clutrr_task(exported)
    assert again.splits == task.splits


def test_original_release_schema_and_one_file_with_task_split(tmp_path):
    folder = tmp_path / "data_fixture"
    folder.mkdir()
    cols = ["id", "story", "query", "text_query", "target", "text_target", "clean_story", "proof_state", "f_comb",
            "task_name", "story_edges", "edge_types", "query_edge", "genders", "syn_story", "node_mapping",
            "task_split"]

    def orig(i, story, head, tail, word, f_comb, task, s):
        r = hf_row(i, story, head, tail, word, f_comb, task, s)
        r.update(target="neice" if word == "niece" else word, text_query="", syn_story="",
                 text_target=repr([f"[{tail}] is [{head}]'s {word}."]), node_mapping="{7: 0, 3: 1, 9: 2}")
        return r

    train = [orig(i, *AVA, "task_1.2", "train") for i in range(5)] + [orig(9, *HAL[:3], "niece", HAL[4], "task_1.3", "train")]
    pd.DataFrame(train, columns=cols).to_csv(folder / "1.2,1.3_train.csv")
    pd.DataFrame([orig(20, *AVA, "task_1.2", "test")], columns=cols).to_csv(folder / "1.2_test.csv")
    pd.DataFrame([orig(21, *HAL, "task_1.4", "test")], columns=cols).to_csv(folder / "1.4_test.csv")
    task = load_clutrr_task(folder, seed=3)
    assert [r["target"] for r in task.splits["test_id"]] == [" daughter"]
    assert [r["k"] for r in task.splits["test_ood"]] == [4]
    assert len(task.splits["train"]) + len(task.splits["validation"]) == 6
    assert "niece" in {r["relation"] for s in ("train", "validation") for r in task.splits[s]}, "neice -> niece"
    assert task.metadata["split_from"].startswith("train rows cut")
    # One HF file with its task_split column.
    one = tmp_path / "all_rows.csv"
    rows = [hf_row(i, *AVA, "task_1.2", s) for i, s in enumerate(["train", "trian", "validation", "test"])]
    pd.DataFrame(rows + [hf_row(9, *HAL, "task_1.5", "test")], columns=HF_COLUMNS).to_csv(one)
    task = load_clutrr_task(one)
    assert (len(task.splits["train"]), len(task.splits["test_id"]), len(task.splits["test_ood"])) == (2, 1, 1)
    # Only the int label (CLUTRR/v1's map): 16 = daughter, 14 = nephew.
    bare = pd.DataFrame([{**r, "target": 16 if r["task_name"] == "task_1.2" else 14} for r in rows
                         + [hf_row(9, *HAL, "task_1.5", "test")]], columns=HF_COLUMNS).drop(columns="target_text")
    bare.to_csv(one)
    assert [r["target"] for r in load_clutrr_task(one).splits["test_ood"]] == [" nephew"]


def test_clutrr_config_errors_and_hub_only_when_named(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="task.path"):
        build_task(load_config(None, ["task.name=clutrr"]))
    with pytest.raises(FileNotFoundError, match="point task.path at one of them"):
        (tmp_path / "clutrr" / "gen_x").mkdir(parents=True)
        load_clutrr_task(tmp_path / "clutrr")
    (tmp_path / "odd.csv").write_text(",id,story,query\n0,a,b,\"('A', 'B')\"\n")
    with pytest.raises(ValueError, match=r"odd.csv \(all\): not the CLUTRR schema; missing column\(s\) task_name, target"):
        load_clutrr_task(tmp_path / "odd.csv")
    with pytest.raises(ValueError, match="both in- and out-of-distribution"):
        ClutrrGeneratorSpec(id_lengths=(2, 3), ood_lengths=(3, 4))
    docs = {k: doc for k, _, doc in describe_fields()}
    for key in ("task.clutrr_generate", "task.clutrr_id_lengths", "task.clutrr_ood_lengths", "task.clutrr_noise",
                "task.clutrr_id_tasks", "task.hub_dataset", "task.hub_config"):
        assert docs[key], f"{key} needs a docstring line"

    import datasets

    folder = write_hf_folder(tmp_path / "hub_copy")
    calls = []

    def fake_load_dataset(name, config=None, **kw):
        calls.append((name, config, kw))
        return datasets.DatasetDict({s: datasets.Dataset.from_pandas(pd.read_csv(folder / f"{s}.csv", index_col=0,
                                                                               encoding="utf-8-sig"))
                                     for s in ("train", "validation", "test")})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    task = build_task(load_config(None, ["task.name=clutrr", "task.hub_dataset=CLUTRR/v1",
                                         "task.hub_config=gen_train23_test2to10"]))
    assert calls == [("CLUTRR/v1", "gen_train23_test2to10", {"revision": "refs/convert/parquet"})]
    assert len(task.splits["test_ood"]) == 3


# ------------------------------------------------------------------------------ the generator

def _ancestors(tree, x):
    """{ancestor: generations up}, x itself at 0."""
    out, frontier, up = {x: 0}, [x], 0
    while frontier:
        up += 1
        frontier = [p for f in frontier for p in tree.parents[f]]
        for p in frontier:
            out.setdefault(p, up)
    return out


def _blood(tree, a, c):
    """(generations up from a, generations down to c) through the nearest common ancestor."""
    up_a, up_c = _ancestors(tree, a), _ancestors(tree, c)
    common = set(up_a) & set(up_c)
    return min(((up_a[x], up_c[x]) for x in common), key=sum) if common else None


BLOOD = {(1, 0): "parent", (0, 1): "child", (1, 1): "sibling", (2, 0): "grandparent", (0, 2): "grandchild",
         (2, 1): "pibling", (1, 2): "nibling"}


def true_relation(tree, a, c):
    """Kinship by common-ancestor distances (independent of the generator's own oracle)."""
    sp = tree.spouse
    if sp[a] == c:
        return "spouse"
    b = _blood(tree, a, c)
    if b is not None:
        return BLOOD.get(b)
    if sp[c] is not None:
        via = {(2, 1): "pibling", (0, 1): "child-in-law", (1, 1): "sibling-in-law"}.get(_blood(tree, a, sp[c]))
        if via:
            return via
    if sp[a] is not None:
        return {(1, 0): "parent-in-law", (1, 1): "sibling-in-law", (1, 2): "nibling"}.get(_blood(tree, sp[a], c))
    return None


def true_word(tree, a, c):
    rel = true_relation(tree, a, c)
    return None if rel is None else WORDS[rel][tree.gender[c] != "male"]


@pytest.mark.parametrize("noise", ["none", "supporting", "irrelevant", "disconnected"])
def test_generated_labels_match_the_family_tree(noise):
    rng = np.random.default_rng(7)
    labels = set()
    for i in range(60):
        k = 2 + i % 6
        p = sample_puzzle(rng, k, noise)
        a, c = p.chain[0], p.chain[-1]
        assert len(p.chain) == k + 1 == len(set(p.chain)), "a simple chain of k facts"
        assert p.label == true_word(p.tree, a, c), (p.steps, p.label)
        for x, y, s in [(p.chain[j], p.chain[j + 1], s) for j, s in enumerate(p.steps)] + p.noise_edges:
            assert true_relation(p.tree, x, y) == s, "every story fact holds in the tree"
        shared = {q for x, y, _ in p.noise_edges for q in (x, y)} & set(p.chain)
        assert len(shared) == {"none": 0, "supporting": 2, "irrelevant": 1, "disconnected": 0}[noise]
        assert len(p.noise_edges) == {"none": 0, "supporting": 2}.get(noise, 1)
        labels.add(p.label)
    assert len(labels) >= 8


def test_generator_is_seeded_and_rows_follow_the_official_schema(tmp_path):
    spec = ClutrrGeneratorSpec(n_train=20, n_validation=6, n_test=8, ood_lengths=(4, 6), noise="irrelevant", seed=5)
    sets = generate_clutrr_sets(spec)
    again = generate_clutrr_sets(spec)
    for s in sets:
        pd.testing.assert_frame_equal(sets[s], again[s])
    other = generate_clutrr_sets(ClutrrGeneratorSpec(n_train=20, n_validation=6, n_test=8, ood_lengths=(4, 6),
                                                     noise="irrelevant", seed=6))
    assert list(other["train"]["story"]) != list(sets["train"]["story"])
    test = sets["test"]
    assert list(test.columns[:14]) == HF_COLUMNS and len(test) == 16 and set(sets) == {"train", "validation", "test"}
    for r in test.to_dict("records"):
        k = int(r["task_name"].split(".")[1])
        assert r["task_name"].startswith("task_3.") and len(r["f_comb"].split("-")) == k
        assert ast.literal_eval(r["edge_types"]) == r["f_comb"].split("-")
        assert ast.literal_eval(r["query_edge"]) == (0, k) and r["k_eff"] == k
        assert len(ast.literal_eval(r["story_edges"])) == k + 1
        head, tail = ast.literal_eval(r["query"])
        assert f"[{head}]" in r["story"] and f"[{tail}]" in r["story"]
        assert len(r["genders"].split(",")) == k + 2
    assert sorted(test["task_name"].str.split(".").str[1].astype(int).unique()) == [2, 3, 4, 6]
    # Written in the HF layout and read back by the official-file loader.
    write_clutrr_files(tmp_path / "gen", spec)
    task = load_clutrr_task(tmp_path / "gen")
    assert {r["k"] for r in task.splits["test_id"]} == {2, 3}
    assert {r["k"] for r in task.splits["test_ood"]} == {4, 6}
    assert [r["k_eff"] for r in task.splits["test_ood"]] == [r["k"] for r in task.splits["test_ood"]]
    for r in task.splits["test_ood"]:
        mentioned = {r["prompt"][a:b] for a, b in r["signal_spans"]}
        assert len(mentioned) == r["k"] + 1, "the chain's people, not the irrelevant one"
    assert len(task.splits["train"]) == 20 and len(task.splits["test_ood"]) == 8
    first = task.splits["test_id"][0]
    row = test.iloc[0]
    head, tail = ast.literal_eval(row["query"])
    assert first["prompt"] == (f"Story: {row['story']}\nQuery: What is the relationship between {head} and {tail}? "
                               "Answer:") and first["target"] == " " + row["target_text"]


# ------------------------------------------------------------------------------ real CLUTRR rows

@pytest.mark.skipif(not (REAL / "gen_train23_test2to10").is_dir(), reason="real CLUTRR files not present")
def test_real_clutrr_files_parse():
    task = load_clutrr_task(REAL / "gen_train23_test2to10")
    assert (len(task.splits["test_id"]), len(task.splits["test_ood"])) == (38 + 105, 1146 - 143)
    assert len(task.splits["train"]) + len(task.splits["validation"]) == 2020
    assert {r["k"] for r in task.splits["test_ood"]} == set(range(4, 11))
    first = task.splits["test_id"][0]
    assert first["prompt"] == ("Story: [Scott] and [Lewis] are brothers. [Jason] is father of their father\n"
                               "Query: What is the relationship between Jason and Lewis? Answer:")
    assert first["target"] == " grandson"
    assert [first["prompt"][a:b] for a, b in first["signal_spans"]] == ["[Scott]", "[Lewis]", "[Jason]"]
    assert all(2 <= r["k_eff"] <= r["k"] for r in task.splits["test_ood"])
    sup = REAL / "rob_train_sup_23_test_all_23"
    if sup.is_dir():
        rob = load_clutrr_task(sup)
        assert {r["task_name"] for r in rob.splits["test_ood"]} == {"task_1.3", "task_3.3", "task_4.3"}


# ------------------------------------------------------------------------------ ECQA

def ecqa_row(i, concept, answer_index=1, **extra):
    options = [f"opt{i}x{j}" for j in range(5)]
    return {"q_no": f"{i:032x}", "q_concept": concept, "q_text": f"What is item {i} used for?",
            **{f"q_op{j + 1}": o for j, o in enumerate(options)}, "q_ans": options[answer_index],
            "taskA_pos": "it is useful\nit is common", "taskA_neg": "", "taskB": "Because.", **extra}


def test_ecqa_prompt_letters_and_concept_split(tmp_path):
    folder = tmp_path / "ecqa"
    folder.mkdir()
    train = [ecqa_row(i, ["bird", "fish", "tree"][i % 3], answer_index=i % 5) for i in range(9)]
    pd.DataFrame(train).to_parquet(folder / "train.parquet")
    (folder / "validation.jsonl").write_text("".join(json.dumps(ecqa_row(20 + i, "bird")) + "\n" for i in range(2)))
    test = [ecqa_row(30, "fish", answer_index=4), ecqa_row(31, "rock"), ecqa_row(32, "tree", answer_index=0)]
    pd.DataFrame(test).to_csv(folder / "cqa_data_test.csv")  # the authors' files carry an index column
    task = load_ecqa_task(folder)
    first = task.splits["test_id"][0]
    assert first["prompt"] == ("Question: What is item 30 used for?\nOptions:\nA. opt30x0\nB. opt30x1\nC. opt30x2\n"
                               "D. opt30x3\nE. opt30x4\nAnswer:")
    assert first["target"] == " E" and first["answer_text"] == "opt30x4"
    assert [first["prompt"][a:b] for a, b in first["signal_spans"]] == ["opt30x4"]
    assert [r["target"] for r in task.splits["train"]] == [" A", " B", " C", " D", " E", " A", " B", " C", " D"]
    assert [r["q_concept"] for r in task.splits["test_ood"]] == ["rock"], "unseen concept = OOD"
    assert len(task.splits["validation"]) == 2 and {"A", "E"} <= set(task.vocabulary)
    # A split column overrides the concept rule.
    pd.DataFrame([{**r, "split": s} for r, s in zip(test, ["ood", "id", "id"], strict=True)]).to_csv(
        folder / "cqa_data_test.csv")
    assert [r["q_no"] for r in load_ecqa_task(folder).splits["test_ood"]] == [f"{30:032x}"]
    # One file: held-out concepts.
    one = tmp_path / "ecqa_all.jsonl"
    one.write_text("".join(json.dumps(ecqa_row(i, f"c{i % 10}")) + "\n" for i in range(60)))
    task = load_ecqa_task(one, seed=1)
    ood_concepts = {r["q_concept"] for r in task.splits["test_ood"]}
    assert len(ood_concepts) == 2 and not ood_concepts & {r["q_concept"] for r in task.splits["train"]}
    assert sum(len(v) for v in task.splits.values()) == 60


def test_ecqa_from_the_hub_only_when_named(monkeypatch):
    import datasets

    calls = []
    data = {"train": [ecqa_row(i, "bird") for i in range(5)], "test": [ecqa_row(9, "bird"), ecqa_row(10, "sun")]}

    def fake_load_dataset(name, config=None, **kw):
        calls.append((name, config, kw))
        return datasets.DatasetDict({s: datasets.Dataset.from_list(rs) for s, rs in data.items()})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    task = build_task(load_config(None, ["task.name=ecqa", "task.hub_dataset=tasksource/ecqa"]))
    assert calls == [("tasksource/ecqa", None, {})]
    assert [r["q_concept"] for r in task.splits["test_ood"]] == ["sun"] and len(task.splits["validation"]) == 1


def test_ecqa_answer_errors_name_the_row(tmp_path):
    bad = ecqa_row(3, "bird", q_ans="not an option")
    path = tmp_path / "broken.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [ecqa_row(i, f"c{i}") for i in range(3)] + [bad]))
    with pytest.raises(ValueError, match=r"broken.jsonl row 3: q_ans 'not an option' is not among the options"):
        load_ecqa_task(path)
    dup = ecqa_row(4, "bird", q_op2="opt4x0", q_ans="opt4x0")
    path.write_text("".join(json.dumps(r) + "\n" for r in [ecqa_row(i, f"c{i}") for i in range(3)] + [dup]))
    with pytest.raises(ValueError, match=r"row 3: .*matches options \['A', 'B'\]"):
        load_ecqa_task(path)
    path.write_text(json.dumps({"q_text": "x"}) + "\n")
    with pytest.raises(ValueError, match="missing column"):
        load_ecqa_task(path)
    with pytest.raises(ValueError, match="task.path"):
        build_task(load_config(None, ["task.name=ecqa"]))


# ------------------------------------------------------------------------------ end to end

@pytest.mark.slow
def test_run_end_to_end_on_generated_clutrr(tiny_overrides, tmp_path):
    overrides = tiny_overrides(tmp_path, "c", **{
        "task.name": "clutrr", "task.clutrr_generate": "true", "task.clutrr_ood_lengths": "[4,5]",
        "tracking.steps": "[0,4]",
    })
    out = run(load_config(None, overrides), progress=False)
    df = pd.read_parquet(out.run_dir / "results.parquet")
    assert {"id", "ood"} <= set(df["split"]) and set(df["step"]) >= {0, 4}
    assert "task: clutrr" in out.report_path.read_text()

"""``inforidge generate-info``: generate T tokens per prompt, measure the information of
every layer's state at every decoding step against the gold target, write table,
figures and report.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from inforidge.config.settings import FigureSettings, GenerationSettings, SequenceInfoSettings
from inforidge.extract.batching import BatchSizer
from inforidge.extract.generated import GeneratedStates, generate_with_states, target_embeddings
from inforidge.info.sequence_kernel import sequence_gram
from inforidge.measure.sequence import sequence_information_rows
from inforidge.models.parts import locate_parts
from inforidge.pipelines.folders import check_output_folder
from inforidge.report.generation import save_generation_figures, write_generation_report
from inforidge.results.table import ResultsTable, remove_table
from inforidge.tasks.stopwords import STOPWORDS_SOURCE
from inforidge.tasks.tokenize import check_unknown_tokens


@dataclass
class GenerateInfoOutput:
    """``.frame`` (the results), ``out_dir`` and ``report_path``, as every entry point; plus the states."""

    out_dir: Path | None
    table: object  # ResultsTable
    states: GeneratedStates
    figures: dict[str, Path]
    report_path: Path | None
    summary: dict

    @property
    def frame(self):
        return self.table.frame


def generate_info(model, tokenizer, records: list[dict], *, out_dir: str | Path | None = None,
                  generation: GenerationSettings | None = None, info: SequenceInfoSettings | None = None,
                  plot_steps: Sequence[int] | None = None, task_name: str = "", model_name: str = "",
                  progress: bool = True, block_path: str | None = None,
                  final_norm_path: str | None = None, allow_unknown_tokens: bool = False,
                  figures: FigureSettings | None = None) -> GenerateInfoOutput:
    """Generate, measure I(h_l^(t); Y) per step and layer, and (with ``out_dir``) write
    results.parquet/csv, generations.jsonl, figures/* (formats, dpi and style of ``figures``; default
    PNG) and report.md.

    records: dicts with ``prompt`` and ``target`` (see :mod:`inforidge.tasks.multitoken`).
    Prompts or gold targets that are mostly the tokenizer's unknown token (above 50 %) are
    refused before anything is generated, unless ``allow_unknown_tokens``; the unknown-token
    share of each goes to the summary and the report. An existing ``out_dir`` gets a fresh
    table (its earlier results are replaced).
    """

    gen = generation or GenerationSettings()
    st = info or SequenceInfoSettings()
    if len(records) < 2:
        raise ValueError(f"{len(records)} record(s): the information needs at least 2 samples (use more --n)")
    bad = next((i for i, r in enumerate(records) if not all(isinstance(r.get(k), str) for k in ("prompt", "target"))),
               None)
    if bad is not None:
        raise ValueError(f"record {bad} has no prompt or target string ({sorted(records[bad])}); every record "
                         "needs both (see inforidge.tasks.multitoken)")
    out = check_output_folder(out_dir, "the generate-info output folder (--out)") if out_dir is not None else None
    foreign = [f for f in ("config.yaml", "layers.json") if out is not None and (out / f).exists()]
    if foreign:  # a training run's or a layers run's folder: its results.parquet would be replaced
        raise ValueError(f"{out} holds another command's results ({foreign[0]}); generate-info writes a fresh "
                         "table there and would replace them. Choose another --out (e.g. <run>/generate-info)")
    unknown = {what: check_unknown_tokens(tokenizer, [r[key] for r in records], what, allow=allow_unknown_tokens)
               for what, key in (("prompts", "prompt"), ("gold targets", "target"))}
    t0 = time.time()
    parts = locate_parts(model, block_path=block_path, final_norm_path=final_norm_path)
    batches = BatchSizer(gen.batch_size)
    states = generate_with_states(parts, tokenizer, [r["prompt"] for r in records], gen, progress=progress,
                                  batch_size=batches)
    emb, mask, target_ids = target_embeddings(parts, tokenizer, [r["target"] for r in records], gen.max_target_tokens)
    ky = sequence_gram(emb, mask, sigma=st.target_sigma)
    splits = sorted({str(r.get("split", "all")) for r in records})
    split = splits[0] if len(splits) == 1 else "all"
    extra = {"max_new_tokens": gen.max_new_tokens, "do_sample": gen.do_sample}
    rows = sequence_information_rows(states, ky, st, split=split, extra=extra, progress=progress)
    table = ResultsTable(None)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        remove_table(out)  # a fresh table, not appended to an old one
        table = ResultsTable(out)
    table.append(rows)
    table.compact()
    eos = getattr(tokenizer, "eos_token_id", None)
    summary = {
        "model": model_name or getattr(model.config, "_name_or_path", ""), "task": task_name,
        "n_samples": len(records), "split": split, "n_layers": parts.num_layers,
        "n_truncated": states.n_truncated, "prompt_tokens_max": int(states.prompt_lengths.max()),
        "target_tokens_mean": float(mask.sum(1).float().mean()), "target_tokens_max": int(mask.sum(1).max()),
        "with_eos": int((states.generated_ids == eos).any(1).sum()) if eos is not None else 0,
        "token_type_counts": {k: int(sum(row.count(k) for row in states.types))
                              for k in ("content", "stopword", "punctuation", "special")},
        "unknown_tokens": {what: {"n_unknown": u.n_unknown, "n_tokens": u.n_tokens, "share": round(u.share, 4)}
                           for what, u in unknown.items()},
        "generation": asdict(gen), "batch_size_used": batches.size, "information": asdict(st), "stopwords": STOPWORDS_SOURCE,
        "wall_seconds": round(time.time() - t0, 1),
    }
    figures: dict[str, Path] = {}
    report_path = None
    if out is not None:

        with (out / "generations.jsonl").open("w", encoding="utf-8") as f:
            for r, text, ids, kinds, tids in zip(records, states.texts, states.generated_ids.tolist(), states.types,
                                                 target_ids, strict=True):
                f.write(json.dumps({"id": r.get("id"), "generated": text, "generated_ids": ids, "token_types": kinds,
                                    "target": r["target"], "target_tokens": len(tids)}) + "\n")
        figures = save_generation_figures(table.frame, out / "figures", steps=plot_steps, settings=figures)
        summary["wall_seconds"] = round(time.time() - t0, 1)
        report_path = write_generation_report(table.frame, out, summary, figures, states, records)
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return GenerateInfoOutput(out, table, states, figures, report_path, summary)

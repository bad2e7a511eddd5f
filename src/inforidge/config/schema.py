"""Run configuration: nested dataclasses, loadable from YAML, overridable as ``section.field=value``.

Every field is documented by the string literal under it; ``inforidge config`` prints them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from inforidge.config.settings import (
    CLUTRR_NAMES,
    DTYPES,
    MULTI_TOKEN_POLICIES,
    RENDERINGS,
    FigureSettings,
    GenerationSettings,
    LayerSuiteSettings,
    MeasureSettings,
    SequenceInfoSettings,
    check_whole_target_estimator,
    check_whole_target_label,
)


@dataclass
class TaskConfig:
    name: str = "arithmetic"
    """Task: 'arithmetic' (built-in synthetic task), 'jsonl' (your own file: task.path), 'clutrr' (official
    files in task.path, or task.clutrr_generate) or 'ecqa' (tasksource/ecqa files in task.path)."""
    path: str | None = None
    """jsonl: the JSONL file, one {"prompt", "target", "split": "id"|"ood", "set"?, ...} object a line.
    clutrr: a CLUTRR config folder or file (HF or original-release CSV/parquet); ecqa: a file or a folder
    of <...>train / validation / test files."""
    multi_token_target: str = "first"
    """Targets longer than one token: 'first' keeps their first token (one warning counts them) and
    stops if two distinct targets then share a first token (e.g. 'father-in-law' and 'father');
    'first_allow_collisions' merges such targets into one class with a warning; 'error' stops; 'whole' keeps
    the whole target: training predicts all its tokens, the information is measured against the sequence of
    its token embeddings (sequence kernel; needs tracking.measure.label_view=token_embedding) and the early-exit
    accuracy is that of its first token."""
    validation_fraction: float = 0.1
    """jsonl without a "set" field: share of the id lines drawn (seeded by task.seed) for validation;
    clutrr / ecqa without a validation file: share of the train rows (clutrr: or validation rows) cut off for it."""
    test_fraction: float = 0.2
    """jsonl without a "set" field: share of the id lines drawn for the in-distribution test split;
    ecqa from one file: share of its concepts held out as OOD and of the other rows drawn for test_id."""
    train_modulus: int = 13
    """arithmetic: modulus p of the training / in-distribution data."""
    ood_moduli: list[int] = field(default_factory=lambda: [m for m in range(5, 21) if m != 13])
    """arithmetic: moduli of the out-of-distribution test split (must exclude train_modulus)."""
    rendering: str = "auto"
    """arithmetic: how values are written so that every target is one distinct token: 'words' (S6 / N42, the
    from-scratch model's), 'letters' (signal values as capital letters A.., noise as numbers: "B 42 D 88 ... ?"
    -> " G"), 'auto' = words for the from-scratch word tokenizer, else the first of words, letters whose every
    target value is one distinct token of the model's tokenizer (an explicit choice is checked the same way)."""
    n_train: int = 10_000
    """Training samples."""
    n_validation: int = 2_000
    """Validation samples (in distribution; used for eval loss and early stopping)."""
    n_test: int = 2_000
    """Test samples per split (in distribution and out of distribution)."""
    seed: int = 0
    """Seed of the data generator (jsonl: of the train / validation / test draw)."""
    hub_dataset: str | None = None
    """clutrr / ecqa: a hub dataset to read with datasets.load_dataset instead of task.path (e.g. CLUTRR/v1,
    tasksource/ecqa); needs the network. Empty = local files only."""
    hub_config: str | None = None
    """clutrr / ecqa with hub_dataset: its config name (CLUTRR/v1: e.g. gen_train23_test2to10)."""
    clutrr_id_tasks: list[str] | None = None
    """clutrr: task names counted in distribution (e.g. [task_1.2, task_1.3]); empty = the tasks of the
    train/validation rows. Every other test row is out of distribution."""
    clutrr_generate: bool = False
    """clutrr: build the data with the built-in CLUTRR-style generator instead of reading files (sizes
    n_train, n_validation, and n_test for each of ID and OOD; seeded by task.seed)."""
    clutrr_id_lengths: list[int] = field(default_factory=lambda: [2, 3])
    """clutrr generator: chain lengths k (story facts) of train, validation and test_id."""
    clutrr_ood_lengths: list[int] = field(default_factory=lambda: [4, 5, 6, 7, 8, 9, 10])
    """clutrr generator: chain lengths k of test_ood (disjoint from clutrr_id_lengths)."""
    clutrr_noise: str = "none"
    """clutrr generator: extra facts per story: none | supporting | irrelevant | disconnected (CLUTRR tasks 1-4)."""
    clutrr_names: str = "brackets"
    """clutrr: names in the story: 'brackets' ([Jason], as in the CLUTRR data and the paper's prompt), 'plain'
    (Jason), 'auto' = plain for a pretrained model (model.name_or_path), brackets from scratch. The query
    names are plain either way."""

    def __post_init__(self) -> None:
        if self.rendering != "auto" and self.rendering not in RENDERINGS:
            raise ValueError(f"task.rendering must be 'auto' or one of {RENDERINGS}; got {self.rendering!r}")
        if self.clutrr_names != "auto" and self.clutrr_names not in CLUTRR_NAMES:
            raise ValueError(f"task.clutrr_names must be 'auto' or one of {CLUTRR_NAMES}; got {self.clutrr_names!r}")
        if self.multi_token_target not in MULTI_TOKEN_POLICIES:
            raise ValueError(
                f"task.multi_token_target must be one of {MULTI_TOKEN_POLICIES}; got {self.multi_token_target!r}"
            )


@dataclass
class ModelConfig:
    name_or_path: str | None = None
    """A local folder or hub name of a causal LM to fine-tune; empty = train the default GPT-2 from scratch.
    A .gguf file, or smollm2 (the packaged SmolLM2-135M-Instruct GGUF), is converted once to a cached plain folder."""
    gguf_file: str | None = None
    """Pretrained LM: the .gguf file inside the folder name_or_path (a .gguf path in name_or_path needs none)."""
    n_layer: int = 12
    """Default GPT-2: number of blocks L (the paper's 12)."""
    n_embd: int = 128
    """Default GPT-2: width."""
    n_head: int = 4
    """Default GPT-2: attention heads."""
    seed: int = 0
    """Seed of the default model's initialisation."""
    block_path: str | None = None
    """Override: attribute path of the block list (e.g. 'model.layers')."""
    final_norm_path: str | None = None
    """Override: attribute path of the final norm (e.g. 'model.norm')."""
    revision: str | None = None
    """Pretrained LM: hub branch, tag or commit to load (e.g. 'step3000' for Pythia)."""
    dtype: str = "float32"
    """Pretrained LM: weight dtype, auto | float32 | bfloat16 | float16 (auto = the checkpoint's own;
    float32 keeps fine-tuning updates exact; metrics are computed in float32 either way)."""
    device_map: str | None = None
    """Pretrained LM: from_pretrained device_map, e.g. 'auto' to shard a large model over the GPUs
    of one process (not with multi-process accelerate launch); empty = one device."""
    attn_implementation: str | None = None
    """Pretrained LM: eager | sdpa | flash_attention_2 ... (empty = the transformers default)."""
    trust_remote_code: bool = False
    """Pretrained LM: allow model code from the hub repository (only for repositories you trust)."""
    keep_blocks: int | None = None
    """Pretrained LM: keep only its first k blocks (with its final norm and LM head) before fine-tuning;
    the depth-threshold analysis (paper Fig. 3). Empty = all blocks."""

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"model.dtype must be one of {DTYPES}; got {self.dtype!r}")
        if self.keep_blocks is not None:
            if isinstance(self.keep_blocks, bool) or not isinstance(self.keep_blocks, int) or self.keep_blocks < 1:
                raise ValueError(f"model.keep_blocks must be >= 1 (an integer, or empty for all blocks); got {self.keep_blocks}")
            if not self.name_or_path:
                raise ValueError("model.keep_blocks truncates a pretrained model (model.name_or_path); "
                                 "for the default GPT-2 set model.n_layer instead")

    def from_pretrained_kwargs(self) -> dict[str, Any]:
        """The options passed to ``from_pretrained`` (unset ones left to transformers)."""
        kw = {"revision": self.revision, "dtype": self.dtype, "device_map": self.device_map,
              "attn_implementation": self.attn_implementation, "trust_remote_code": self.trust_remote_code}
        return {k: v for k, v in kw.items() if v is not None}


@dataclass
class TrainingConfig:
    epochs: float = 3.0
    """Training epochs (fractions allowed); ignored when max_steps > 0. 0: no training, the
    model is measured as it is (step 0 only, as `inforidge measure`)."""
    max_steps: int = -1
    """Stop after this many optimizer steps, overriding epochs (-1: use epochs). 0: no
    training, the model is measured as it is (step 0 only, as `inforidge measure`; no model
    copy, no checkpoints)."""
    batch_size: int = 64
    """Per-device training batch size."""
    learning_rate: float = 1e-3
    """Peak AdamW learning rate."""
    weight_decay: float = 0.01
    """AdamW weight decay (the paper's 0.01)."""
    adam_beta2: float = 0.98
    """AdamW beta2 (0.98 escapes the task's loss plateau sooner than the default 0.999)."""
    warmup_ratio: float = 0.05
    """Fraction of steps of linear warm-up before the linear decay."""
    early_stopping_patience: int | None = None
    """Stop after this many evaluations without a better validation loss (empty: off)."""
    eval_steps: int | None = None
    """Evaluate validation loss every this many steps (empty: once per epoch)."""
    save_steps: int = 100
    """Save a Trainer checkpoint every this many steps (resume restarts from the last). Only the
    last one is kept while training (weights + optimizer state: what resume needs)."""
    save_model: bool = True
    """Save the final weights and tokenizer to <run>/model (read by `inforidge analyze`,
    `sweep` and `layers` on the run folder). false: the run keeps only its table, figures and
    report (the analyses still run, on the model in memory)."""
    keep_checkpoints: bool = False
    """Keep every Trainer checkpoint in <run>/checkpoints after the run finishes (for
    `sweep`/`layers`/`analyze --checkpoints`). false: only the last is kept while training
    and checkpoints/ is deleted once the run has finished."""
    threads: int | Literal["auto"] = "auto"
    """torch threads: "auto" = the cores other processes leave free when the run starts (all of
    them on an idle machine, fewer on a busy one; benchmarks/bench_threads.py), 0 = torch's
    default (all cores), or a number. The choice is recorded in env.json."""
    seed: int = 0
    """Trainer seed (data order, initialisation of new heads)."""
    report_to: str = "none"
    """Trackers for the Trainer's logs: none, tensorboard, wandb, ... (comma-separated)."""


@dataclass
class TrackingConfig:
    n_measurements: int = 8
    """Log-spaced training steps to measure at (including step 0 and the last)."""
    steps: list[int] | None = None
    """Explicit steps to measure at (overrides n_measurements)."""
    measure: MeasureSettings = field(default_factory=MeasureSettings)
    """Estimator settings."""
    ridge_bootstrap: int = 200
    """Bootstrap draws of the ridge statistics on the final checkpoint (peak layer with its CI,
    max-statistic p of the drop to the last layer, raw and null-corrected, sigma=1 vs 'median';
    they decide the report's verdict); at least 39 for a verdict at the 0.05 level; 0 = off."""
    save_states: bool = False
    """Write every measurement's extracted states to <run>/states/ (safetensors, one file per step;
    about (L+1) x N x D x 4 bytes per split and step, N the pooled samples), so `inforidge analyze
    RUN --from-states` recomputes any estimator setting without the model."""
    ridge_every_step: bool = False
    """Add the ridge statistics to every measured step, not only the final one (each time about
    3 measurements' worth of time per 100 draws)."""


@dataclass
class AnalysesConfig:
    attention: bool = True
    """After training: attention of the last position to the signal tokens per layer (paper Table 2;
    runs with eager attention; tasks whose records carry signal_positions)."""
    residual_scaling: bool = False
    """After training: fit one residual scale per block on the ID and on the OOD test split (paper §5.2)."""
    scaling_epochs: int = 3
    """Residual scaling: epochs of AdamW on the scales (paper: 3-10)."""
    scaling_lr: float = 0.01
    """Residual scaling: learning rate (paper: 1e-4..1e-2)."""
    scaling_max_records: int = 1000
    """Residual scaling: at most this many training records per split (those outside the seed-0 subsample)."""
    kernel_ablation: bool = False
    """After training: re-measure the predictive information with the Gaussian, Laplacian and polynomial
    kernels (paper Fig. 11; rows kernel_ablation_*, the kernel column names the kernel)."""


@dataclass
class RunConfig:
    name: str = "demo"
    """Run name: outputs go to <output_dir>/<name>/."""
    output_dir: str = "runs"
    """Parent folder of runs."""
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    analyses: AnalysesConfig = field(default_factory=AnalysesConfig)
    figures: FigureSettings = field(default_factory=FigureSettings)
    """Figure files: formats (png, pdf, svg), dpi and style (notebook | paper)."""

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    def __post_init__(self) -> None:
        check_whole_target_label(self.task.multi_token_target, self.tracking.measure.label_view)
        check_whole_target_estimator(self.task.multi_token_target, self.tracking.measure.estimator)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class PaperConfig:
    depths: list[int] = field(default_factory=lambda: [2, 4, 6, 8, 12])
    """Depth threshold (paper Fig. 3): the number of blocks of each depth run (model.n_layer from scratch;
    a pretrained model is truncated to its first k blocks)."""
    overfit_epochs_factor: float = 3.0
    """Overfitting (paper Fig. 4): the overfit run trains this many times the main run's epochs."""
    sub_run_analyses: bool = False
    """Depth and overfit runs: keep the main config's analyses (ridge bootstrap, attention, residual
    scaling, kernels); false = curves only."""

    def __post_init__(self) -> None:
        if not self.depths or any(int(k) < 1 for k in self.depths):
            raise ValueError(f"paper.depths must list depths >= 1; got {self.depths}")
        if self.overfit_epochs_factor <= 1:
            raise ValueError(f"paper.overfit_epochs_factor must be > 1; got {self.overfit_epochs_factor}")


@dataclass
class ModelPartsConfig:
    """Part overrides for the commands that load a model as it is (layers, generate-info)."""

    block_path: str | None = None
    """Override: attribute path of the block list (e.g. 'model.layers'); empty = found automatically."""
    final_norm_path: str | None = None
    """Override: attribute path of the final norm (e.g. 'model.norm'); empty = found automatically."""


@dataclass
class LayersConfig:
    """``inforidge layers``: the flags set ``suite``; ``--config`` YAML and ``--set`` apply on top."""

    model: ModelPartsConfig = field(default_factory=ModelPartsConfig)
    suite: LayerSuiteSettings = field(default_factory=LayerSuiteSettings)
    """Layer-suite settings (batch_size, max_length, n_samples, alpha, base, seed, final_norm, ...)."""
    figures: FigureSettings = field(default_factory=FigureSettings)
    """Figure files: formats (png, pdf, svg), dpi and style (notebook | paper)."""
    allow_unknown_tokens: bool = False
    """Measure texts even when more than 50 % of their tokens are the tokenizer's unknown token
    (otherwise an error; above 5 % a warning)."""


@dataclass
class GenerateConfig:
    """``inforidge generate-info``: the flags set ``generation`` and ``info``; ``--config`` YAML and
    ``--set`` apply on top."""

    model: ModelPartsConfig = field(default_factory=ModelPartsConfig)
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    """How tokens are generated (max_new_tokens, do_sample, seed, batch_size, ...)."""
    info: SequenceInfoSettings = field(default_factory=SequenceInfoSettings)
    """How the information is estimated (n_permutations, sigma, target_sigma, seed, ...)."""
    figures: FigureSettings = field(default_factory=FigureSettings)
    """Figure files: formats (png, pdf, svg), dpi and style (notebook | paper)."""
    allow_unknown_tokens: bool = False
    """Measure prompts and gold targets even when more than 50 % of their tokens are the tokenizer's unknown token
    (otherwise an error; above 5 % a warning)."""

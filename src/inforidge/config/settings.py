"""Per-stage settings dataclasses and the vocabularies they accept (no torch here).

Each field is documented by the string literal under it; ``inforidge config`` prints them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

DTYPES = ("auto", "float32", "bfloat16", "float16")


LABEL_VIEWS = ("embedding_output", "token_embedding")


FINAL_NORM_VIEWS = ("post", "pre")


# The kernels of inforidge.info.kernels.gram_matrix (a test keeps the two lists equal).
KERNELS = ("gaussian", "laplacian", "polynomial", "linear")


def bandwidth_columns(sigma: float | str | None, prefix: str = "sigma") -> dict:
    """The row columns of a Gaussian bandwidth: ``{prefix}`` a number (NaN for the median rule
    or no bandwidth) and ``{prefix}_rule`` "fixed", "median" or None (no Gaussian kernel), so the
    column keeps one type (results schema 3)."""
    if sigma is None:
        return {prefix: math.nan, f"{prefix}_rule": None}
    if isinstance(sigma, str):
        if sigma != "median":
            raise ValueError(f"{prefix} must be a positive number or 'median'; got {sigma!r}")
        return {prefix: math.nan, f"{prefix}_rule": "median"}
    return {prefix: float(sigma), f"{prefix}_rule": "fixed"}


# The information estimators of inforidge.info.information (inforidge.info.ESTIMATORS; a test
# keeps the two lists equal): "exact" eigendecomposes N x N Grams, "stochastic" is matrix-free
# (Gaussian kernel, labels given as features), "auto" is exact up to inforidge.info.EXACT_MAX_N.
ESTIMATORS = ("auto", "exact", "stochastic")
STOCHASTIC = "stochastic"


def check_estimator(*, alpha=None, base=None, sigmas: dict | None = None, n_permutations=None,
                    kernel=None) -> None:
    """Estimator settings checked when a config is built, so a bad value stops a command before
    it writes anything (the estimators check them again, much later, on the first measurement)."""
    if alpha is not None and not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha (the Renyi order) must be a finite number > 0, e.g. 1 (von Neumann) or 2; got {alpha}")
    if base is not None and not (math.isfinite(base) and base > 0 and base != 1):
        raise ValueError(f"base (of the logarithm) must be > 0 and != 1: 2 for bits, 2.718... for nats; got {base}")
    for name, sigma in (sigmas or {}).items():
        if isinstance(sigma, str):
            if sigma != "median":
                raise ValueError(f"{name} must be a positive number (the paper's 1) or 'median'; got {sigma!r}")
        elif not (math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"{name} (a Gaussian bandwidth) must be a positive finite number or 'median'; got {sigma}")
    if n_permutations is not None and n_permutations < 0:
        raise ValueError(f"n_permutations must be >= 0 (0 = no permutation null); got {n_permutations}")
    if kernel is not None and kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {', '.join(KERNELS)}; got {kernel!r}")


def check_information_estimator(estimator: str, kernel: str | None = None, *, n_probes=None, lanczos_steps=None,
                                deflation=None) -> None:
    """The estimator choice and the stochastic estimator's knobs, checked when a config is built.
    ``stochastic`` builds Gaussian Gram blocks from the features, so any other kernel is an error."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)}; got {estimator!r}")
    if estimator == STOCHASTIC and kernel is not None and kernel != "gaussian":
        raise ValueError(
            f"estimator=stochastic works with the Gaussian kernel only (it builds Gaussian Gram blocks from the "
            f"features), but kernel={kernel!r}; set estimator=auto (exact for this kernel) or estimator=exact, "
            "or kernel=gaussian")
    for name, value, low in (("n_probes", n_probes, 2), ("lanczos_steps", lanczos_steps, 1),
                             ("deflation", deflation, 0)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise ValueError(f"{name} (of the stochastic estimator) must be an integer >= {low}; got {value!r}")


def check_batch_size(value) -> None:
    """A batch size is a positive integer or "auto" (largest that fits, halved on out-of-memory)."""
    if value == "auto":
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"batch_size must be a positive integer or 'auto'; got {value!r}")


@dataclass
class GenerationSettings:
    """How tokens are generated (recorded in the report)."""

    max_new_tokens: int = 50
    """T, tokens generated per prompt (paper: 50)."""
    do_sample: bool = False
    """Sample instead of greedy decoding (the paper is greedy)."""
    seed: int = 0
    """Seed of sampling (a batch starting at prompt i uses seed + i); greedy output does not depend on it."""
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    """0 = no top-k cut."""
    batch_size: int | Literal["auto"] = 8
    """Prompts per generate() call (left padded), or "auto": the largest that fits, halved on
    out-of-memory from 256 (the size found is logged and recorded)."""
    max_target_tokens: int | None = None
    """Cut gold targets to their first this-many tokens (None = whole targets)."""

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1; got {self.max_new_tokens}")
        check_batch_size(self.batch_size)
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0; got {self.temperature}")


@dataclass
class SequenceInfoSettings:
    """How the information is estimated (recorded with every row)."""

    n_permutations: int = 20
    alpha: float = 1.0
    base: float = 2.0
    sigma: float | str = 1.0
    """Gaussian bandwidth of the state kernel (on L2-normalised states)."""
    target_sigma: float | str = 1.0
    """Gaussian bandwidth of the token kernel inside the sequence kernel."""
    final_norm_views: list[str] = field(default_factory=lambda: ["post", "pre"])
    seed: int = 0
    """Seed of the permutation null."""
    type_seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    """Draws of the content/stopword split (step choice and equal-size subsample)."""
    min_type_samples: int = 4
    """Fewer samples than this in either group: the content/stopword split is skipped."""

    def __post_init__(self) -> None:
        bad = [v for v in self.final_norm_views if v not in FINAL_NORM_VIEWS]
        if bad or not self.final_norm_views:
            raise ValueError(f"final_norm_views must be a non-empty subset of {FINAL_NORM_VIEWS}; got {self.final_norm_views}")
        check_estimator(alpha=self.alpha, base=self.base, n_permutations=self.n_permutations,
                        sigmas={"sigma": self.sigma, "target_sigma": self.target_sigma})

    def row_settings(self) -> dict:
        return {"alpha": self.alpha, "kernel": "gaussian", **bandwidth_columns(self.sigma), "base": self.base,
                "label_view": "token_embedding", "n_permutations": self.n_permutations,
                "target_kernel": "sequence_mean_gaussian", **bandwidth_columns(self.target_sigma, "target_sigma")}


KINDS = ("auto", "causal", "encoder")


FINAL_NORM_CHOICES = ("pre", "post")


EXCLUDE_POSITIONS = ("none", "first", "special")


# Tasks of generate-info (tasks/multitoken.py TASKS; listed here so the CLI checks them without imports).
MULTITOKEN_TASKS = ("synthetic", "continuation", "cnn_dailymail", "jsonl")


# Suffix of the layer suite's metrics measured without each prompt's first real token
# (LayerSuiteSettings.compare_first_excluded): a metric name of its own, so no pivot averages
# the two views.
WITHOUT_FIRST = "_without_first"


@dataclass
class LayerSuiteSettings:
    """Options of the suite (all recorded in the rows or the report)."""

    batch_size: int = 16
    max_length: int = 128
    """Prompts are truncated to this many tokens (and to the model's position limit)."""
    max_prompts: int | None = 512
    """At most this many prompts are read from the source (the first ones; None: all)."""
    n_samples: int = 256
    """Cap on the prompts entering the dataset-level and augmentation metrics (seeded subset)."""
    alpha: float = 1.0
    base: float = 2.0
    seed: int = 0
    augment: bool = True
    augment_p: float = 0.3
    temperature: float = 0.1
    n_permutations: int = 10
    final_norm: str = "pre"
    min_tokens: int = 3
    exclude_positions: str = "none"
    """Token positions left out of every metric: "none", "first" (the first real token, where
    attention-sink "massive activations" sit in many pretrained LMs) or "special" (the tokens
    the tokenizer adds, BOS / [CLS] / [SEP]). Recorded in the ``excluded_positions`` column."""
    compare_first_excluded: bool = True
    """With exclude_positions "none", also measure the prompt- and dataset-level metrics without
    the first real token in the same pass (rows with ``excluded_positions`` = "first"), so the
    report can show both curves where a dominant first token changes them."""
    massive_ratio: float = 10.0
    """A token whose state norm is at least this many times its prompt's median token norm
    dominates the prompt (``massive_token_share`` rows; flag "massive_activation")."""

    def validate(self) -> LayerSuiteSettings:
        for name in ("batch_size", "max_length", "n_samples", "n_permutations"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise ValueError(f"{name} must be an integer >= 1; got {v}")
        if self.max_prompts is not None and (int(self.max_prompts) != self.max_prompts or self.max_prompts < 2):
            raise ValueError(f"max_prompts must be an integer >= 2 or None (all); got {self.max_prompts}")
        if self.n_samples < 2:
            raise ValueError(f"n_samples must be >= 2 (dataset metrics compare prompts); got {self.n_samples}")
        if self.final_norm not in FINAL_NORM_CHOICES:
            raise ValueError(f"final_norm must be one of {FINAL_NORM_CHOICES}; got {self.final_norm!r}")
        if self.min_tokens < 3:
            raise ValueError(f"min_tokens must be >= 3 (curvature needs 3 tokens); got {self.min_tokens}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be > 0; got {self.temperature}")
        if self.exclude_positions not in EXCLUDE_POSITIONS:
            raise ValueError(f"exclude_positions must be one of {EXCLUDE_POSITIONS}; got {self.exclude_positions!r}")
        if not (math.isfinite(self.massive_ratio) and self.massive_ratio > 1):
            raise ValueError(f"massive_ratio must be a number > 1; got {self.massive_ratio}")
        check_estimator(alpha=self.alpha, base=self.base)
        return self


@dataclass
class MeasureSettings:
    """How each measurement is made (recorded with every row)."""

    n_samples: int = 100
    """Samples per subsample (the paper uses 50-100)."""
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    """One subsample per seed; mean and spread over seeds are reported."""
    n_permutations: int = 20
    """Draws of the permutation null per subsample."""
    alpha: float = 1.0
    """Renyi order (1 = von Neumann)."""
    base: float = 2.0
    """Log base: 2 gives bits."""
    kernel: str = "gaussian"
    """gaussian | laplacian | polynomial | linear."""
    sigma: float | str = 1.0
    """Gaussian bandwidth: a number (paper: 1) or 'median'."""
    robustness_sigma: float | str | None = "median"
    """Second Gaussian bandwidth of the predictive information, from the same states (rows
    ``robustness_predictive_information*`` with this ``sigma``); None: off. At sigma=1 the Gram
    of a pretrained LM is often nearly all ones, and the corrected MI moves with the spread."""
    label_view: str = "embedding_output"
    """Label embedding y: 'embedding_output' (the paper's) or 'token_embedding'."""
    final_norm_views: list[str] = field(default_factory=lambda: ["post", "pre"])
    """Views of the last layer: 'post' (after the final norm, HF) and/or 'pre' (raw)."""
    batch_size: int | Literal["auto"] = 64
    """Forward-pass batch size during extraction, or "auto": the largest that fits, halved on
    out-of-memory from 256 (the size found is logged and recorded in env.json)."""
    estimator: str = "auto"
    """Information estimator: "exact" (eigendecomposition of the N x N Grams), "stochastic"
    (matrix-free Lanczos quadrature + Hutch++ with standard errors in ``<metric>_se`` rows;
    Gaussian kernel, not with multi_token_target=whole) or "auto": exact for n_samples up to
    4096 (inforidge.info.EXACT_MAX_N), stochastic above where it applies, else exact. The
    ``estimator`` column of each row says which made it."""
    n_probes: int = 128
    """Stochastic estimator: Rademacher probes per trace (standard error ~ 1/sqrt(n_probes))."""
    lanczos_steps: int = 20
    """Stochastic estimator: Lanczos steps (quadrature nodes) per probe."""
    deflation: int = 128
    """Stochastic estimator: top directions of each spectrum handled without probe noise (Hutch++)."""

    def __post_init__(self) -> None:
        if self.n_samples < 2:
            raise ValueError(f"n_samples must be >= 2 for a Gram matrix; got {self.n_samples}")
        if not self.seeds:
            raise ValueError("seeds must list at least one subsampling seed")
        if self.label_view not in LABEL_VIEWS:
            raise ValueError(f"label_view must be one of {LABEL_VIEWS}; got {self.label_view!r}")
        bad = [v for v in self.final_norm_views if v not in FINAL_NORM_VIEWS]
        if bad or not self.final_norm_views:
            raise ValueError(f"final_norm_views must be a non-empty subset of {FINAL_NORM_VIEWS}; got {self.final_norm_views}")
        check_estimator(alpha=self.alpha, base=self.base, n_permutations=self.n_permutations, kernel=self.kernel,
                        sigmas={"sigma": self.sigma})
        check_information_estimator(self.estimator, self.kernel, n_probes=self.n_probes,
                                    lanczos_steps=self.lanczos_steps, deflation=self.deflation)
        check_batch_size(self.batch_size)

    def stochastic_kw(self) -> dict:
        """The stochastic estimator's knobs (keyword arguments of stochastic_information)."""
        return {"n_probes": self.n_probes, "lanczos_steps": self.lanczos_steps, "deflation": self.deflation}

    def row_settings(self) -> dict:
        return {
            "alpha": self.alpha, "kernel": self.kernel,
            **bandwidth_columns(self.sigma if self.kernel == "gaussian" else None), "base": self.base,
            "label_view": self.label_view, "n_permutations": self.n_permutations,
        }

    def kernel_kw(self) -> dict:
        return {"sigma": self.sigma} if self.kernel == "gaussian" else {}


# How the synthetic task writes its values (tasks/synthetic.py); the config adds "auto".
RENDERINGS = ("words", "letters")


# CLUTRR story names: "[Jason]" as in the CLUTRR data and the paper's prompt, or "Jason"; the config adds "auto".
CLUTRR_NAMES = ("brackets", "plain")


# Targets longer than one token: "error" stops; "first" keeps the first token unless two distinct
# targets then share it (an error naming them); "first_allow_collisions" merges them with a warning;
# "whole" keeps the whole target: trained on every token, measured with the sequence kernel over
# the target's token embeddings.
MULTI_TOKEN_POLICIES = ("first", "first_allow_collisions", "error", "whole")


WHOLE = "whole"


def check_whole_target_label(multi_token_target: str, label_view: str) -> None:
    """``whole`` measures against the target's token embeddings; the embedding-output view (token
    plus position embedding at the target's position) exists for its first token only."""
    if multi_token_target == WHOLE and label_view != "token_embedding":
        raise ValueError(
            f"task.multi_token_target=whole measures the information against the whole target's token embeddings, "
            f"but tracking.measure.label_view={label_view!r}; set tracking.measure.label_view=token_embedding"
        )


def check_whole_target_estimator(multi_token_target: str, estimator: str) -> None:
    """``whole`` labels a sample by a sequence-kernel Gram over its target's token embeddings, a
    Gram with no feature rows behind it: the stochastic estimator (which builds Gaussian blocks
    from features) cannot use it; ``auto`` falls back to the exact estimator there."""
    if multi_token_target == WHOLE and estimator == STOCHASTIC:
        raise ValueError(
            "tracking.measure.estimator=stochastic needs labels given as features, but task.multi_token_target=whole "
            "compares whole targets by the sequence kernel (a Gram only); set tracking.measure.estimator=auto "
            "(exact there) or exact"
        )


FIGURE_FORMATS = ("png", "pdf", "svg")
FIGURE_STYLES = ("notebook", "paper")


@dataclass
class FigureSettings:
    """How figures are written: file formats, resolution and size/font preset."""

    formats: list[str] = field(default_factory=lambda: ["png"])
    """File formats of every figure: any of png, pdf, svg (pdf and svg are vector; reports embed the first)."""
    dpi: int = 150
    """Resolution of raster output (png) in dots per inch (300 for print)."""
    style: str = "notebook"
    """Size and font preset: notebook (5.5 in / 11 in wide, 10-pt text) | paper (3.3 in single-column /
    6.8 in double-column wide, 8-pt text, 7-pt legends)."""

    def __post_init__(self) -> None:
        if isinstance(self.formats, str):
            self.formats = [f for f in self.formats.split(",")]
        self.formats = list(dict.fromkeys(str(f).strip().lower().lstrip(".") for f in self.formats if str(f).strip()))
        bad = [f for f in self.formats if f not in FIGURE_FORMATS]
        if bad or not self.formats:
            raise ValueError(f"figures.formats must list one or more of {', '.join(FIGURE_FORMATS)}; got {bad or 'none'}")
        if isinstance(self.dpi, bool) or not isinstance(self.dpi, int) or not 20 <= self.dpi <= 2400:
            raise ValueError(f"figures.dpi must be a whole number from 20 to 2400; got {self.dpi!r}")
        if self.style not in FIGURE_STYLES:
            raise ValueError(f"figures.style must be one of {', '.join(FIGURE_STYLES)}; got {self.style!r}")

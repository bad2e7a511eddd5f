"""Loading models and tokenizers: the default from-scratch GPT-2, any HF causal LM or
encoder, run folders and checkpoints.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedModel,
)

from inforidge.config.schema import RunConfig
from inforidge.config.settings import KINDS
from inforidge.models.parts import (
    detect_kind,
)
from inforidge.models.surgery import truncate_blocks
from inforidge.tasks import TaskData
from inforidge.tasks.tokenize import (
    build_word_tokenizer,
)


def resolve_model_dir(path: str | Path) -> str:
    """A run folder (``runs/<name>`` with ``model/``) resolves to its saved final model."""
    p = Path(path)
    if p.is_dir() and not (p / "config.json").exists() and (p / "model" / "config.json").exists():
        return str(p / "model")
    return str(path)


def load_model_and_tokenizer(path: str | Path, device: str | None = None, dtype: str | None = None):
    """A causal LM and its tokenizer (left padding, pad = eos if missing) from a path or hub name."""
    from transformers import AutoTokenizer


    where = resolve_model_dir(path)
    kw = {}
    if dtype:
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise ValueError(f"dtype must be a torch dtype name such as float32 or bfloat16; got {dtype!r}")
        kw["dtype"] = getattr(torch, dtype)
    try:
        model = load_causal_lm(where, **kw)
    except OSError as e:
        if Path(where).exists():
            raise
        raise FileNotFoundError(
            f"model {path} is not a folder here and could not be loaded from the hub ({e.__class__.__name__}); "
            "train the default with `inforidge demo` (then pass runs/demo) or give a causal LM folder or hub name"
        ) from e
    if device:
        model = model.to(device)
    tokenizer = AutoTokenizer.from_pretrained(where)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def load_model(
    name_or_path: str | Path,
    *,
    kind: str = "auto",
    tokenizer: str | Path | None = None,
    revision: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    trust_remote_code: bool = False,
):
    """Load a model and its tokenizer for the suite; returns ``(model, tokenizer, kind)``.

    kind "auto" reads the config's ``architectures``: ``...ForCausalLM`` / ``...LMHeadModel``
    load with ``AutoModelForCausalLM`` (kind "causal"), anything else with ``AutoModel``
    (kind "encoder"). ``tokenizer`` defaults to ``name_or_path``. A tokenizer without a pad
    token pads with its eos (or unk) token; the mask keeps padding out of every metric.
    """
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    kw: dict = {"trust_remote_code": trust_remote_code}
    if revision is not None:
        kw["revision"] = revision
    if kind == "auto":
        kind = detect_kind(AutoConfig.from_pretrained(str(name_or_path), **kw))
    mkw = dict(kw)
    if dtype is not None:
        mkw["dtype"] = getattr(torch, dtype) if isinstance(dtype, str) and dtype != "auto" else dtype
    cls = AutoModelForCausalLM if kind == "causal" else AutoModel
    model = cls.from_pretrained(str(name_or_path), **mkw).eval()
    if device is not None:
        model.to(device)
    tkw = {} if tokenizer is not None else kw
    tok = AutoTokenizer.from_pretrained(str(tokenizer if tokenizer is not None else name_or_path), **tkw)
    return model, tok, kind


def default_gpt2(
    vocab_size: int,
    *,
    n_layer: int = 12,
    n_embd: int = 128,
    n_head: int = 4,
    n_positions: int = 64,
    pad_token_id: int = 0,
    bos_token_id: int = 2,
    eos_token_id: int = 2,
    seed: int = 0,
) -> GPT2LMHeadModel:
    """A small randomly initialised GPT-2 (dropout off, tied embeddings), seeded."""
    config = GPT2Config(
        vocab_size=vocab_size, n_layer=n_layer, n_embd=n_embd, n_head=n_head,
        n_positions=n_positions, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config)


def load_causal_lm(name_or_path: str | Path, **kwargs) -> PreTrainedModel:
    """``AutoModelForCausalLM.from_pretrained`` with InfoRidge's defaults (eval mode).

    kwargs (revision, dtype, device_map, attn_implementation, trust_remote_code...) pass through.
    """
    model = AutoModelForCausalLM.from_pretrained(str(name_or_path), **kwargs)
    return model.eval()


def build_model_and_tokenizer(config: RunConfig, task: TaskData):
    """The default from-scratch GPT-2 with the task's word tokenizer, or a pretrained LM
    loaded with the model.* options (revision, dtype, device_map, ...)."""
    m = config.model
    if m.name_or_path:
        kw = m.from_pretrained_kwargs()
        tokenizer = AutoTokenizer.from_pretrained(
            m.name_or_path, **{k: kw[k] for k in ("revision", "trust_remote_code") if k in kw}
        )
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = load_causal_lm(m.name_or_path, **kw)
        if m.keep_blocks is not None:
            truncate_blocks(model, m.keep_blocks, block_path=m.block_path, final_norm_path=m.final_norm_path)
        return model, tokenizer
    if task.vocabulary is None:
        raise ValueError(f"task {task.name!r} has no closed vocabulary; set model.name_or_path to a pretrained LM")
    tokenizer = build_word_tokenizer(task.vocabulary)
    model = default_gpt2(
        len(tokenizer), n_layer=m.n_layer, n_embd=m.n_embd, n_head=m.n_head, seed=m.seed,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return model, tokenizer


def _load_tokenizer(source, revision=None, trust_remote_code=False):
    from transformers import AutoTokenizer

    kw = {"trust_remote_code": trust_remote_code}
    if revision is not None:
        kw["revision"] = revision
    tok = AutoTokenizer.from_pretrained(str(source), **kw)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok

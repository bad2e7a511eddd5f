"""THE loader: a model, its tokenizer and its located, validated parts from one ``source``
(a run folder, a model folder, a Trainer checkpoint, a hub name); plus the from-scratch
default GPT-2 of a run.

Every command loads through :func:`load`, so the pad token, the padding side, the dtype
names, the part overrides and the load-time validation are decided once, here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from inforidge.config.schema import ModelConfig
from inforidge.config.settings import KINDS
from inforidge.models.checkpoints import CHECKPOINT_RE, TOKENIZER_FILES
from inforidge.models.gguf import resolve_gguf
from inforidge.models.parts import ModelParts, detect_kind, locate_parts
from inforidge.models.surgery import truncate_blocks
from inforidge.models.validate import validate_parts
from inforidge.tasks import TaskData
from inforidge.tasks.tokenize import build_word_tokenizer

PADDING_SIDES = ("left", "right")


@dataclass(frozen=True)
class LoadedModel:
    """What :func:`load` returns; unpacks as ``model, tokenizer, parts = load(...)``.

    parts: the located (and, by default, validated) parts of a causal LM; None for an encoder,
    which has no final norm + LM head to read out through.
    kind: "causal" or "encoder".
    """

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    parts: ModelParts | None
    kind: str

    def __iter__(self) -> Iterator:
        return iter((self.model, self.tokenizer, self.parts))


def has_tokenizer_files(folder: str | Path) -> bool:
    """Whether ``folder`` holds a saved tokenizer (``tokenizer_config.json`` / ``tokenizer.json``)."""
    return any((Path(folder) / name).exists() for name in TOKENIZER_FILES)


def tokenizer_folder(folder: str | Path) -> Path | None:
    """The folder holding the tokenizer for the model in ``folder``, or None.

    ``folder/model`` (a run folder of ours) or ``folder`` itself; for a Trainer checkpoint
    (``.../checkpoint-<N>``) saved without a tokenizer, its run's: the checkpoint's parent
    and grandparent (``runs/<name>/checkpoints/checkpoint-<N>``), each as ``model/`` or itself.
    """
    folder = Path(folder)
    levels = [folder]
    if CHECKPOINT_RE.match(folder.name):
        levels += [folder.parent, folder.parent.parent]
    for level in levels:
        for candidate in (level / "model", level):
            if has_tokenizer_files(candidate):
                return candidate
    return None


def model_folder(source: str | Path) -> str:
    """A run folder (``runs/<name>`` with ``model/``) resolves to its saved final model;
    anything else (a model folder, a hub name) is returned as given."""
    p = Path(source)
    if p.is_dir() and not (p / "config.json").exists() and (p / "model" / "config.json").exists():
        return str(p / "model")
    return str(source)


def prepare_tokenizer(tokenizer: PreTrainedTokenizerBase, padding_side: str = "left") -> PreTrainedTokenizerBase:
    """Set the padding side and, where the tokenizer has none, the pad token (its eos token,
    else its unk token); the attention mask keeps padding out of every metric. In place."""
    if padding_side not in PADDING_SIDES:
        raise ValueError(f"padding_side must be one of {PADDING_SIDES}; got {padding_side!r}")
    tokenizer.padding_side = padding_side
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token if tokenizer.eos_token is not None else tokenizer.unk_token
    if tokenizer.pad_token is None:
        raise ValueError(f"the tokenizer ({type(tokenizer).__name__}) has no pad, eos or unk token to pad batches "
                         "with; set one before passing it (tokenizer.pad_token = '<some token of its vocabulary>')")
    return tokenizer


def load_tokenizer(source: str | Path, *, revision: str | None = None, trust_remote_code: bool = False,
                   padding_side: str = "left") -> PreTrainedTokenizerBase:
    """``AutoTokenizer.from_pretrained(source)`` prepared by :func:`prepare_tokenizer`."""
    kw: dict = {"trust_remote_code": trust_remote_code}
    if revision is not None:
        kw["revision"] = revision
    return prepare_tokenizer(AutoTokenizer.from_pretrained(str(source), **kw), padding_side)


def torch_dtype(dtype: str | torch.dtype | None) -> str | torch.dtype | None:
    """A dtype name ("float32", "bfloat16"...) as a torch dtype; None and "auto" pass through."""
    if dtype is None or dtype == "auto" or isinstance(dtype, torch.dtype):
        return dtype
    value = getattr(torch, str(dtype), None)
    if not isinstance(value, torch.dtype):
        raise ValueError(f"dtype must be a torch dtype name such as float32 or bfloat16 (or auto); got {dtype!r}")
    return value


def _from_pretrained(where: str, kind: str, source, **kw) -> tuple[PreTrainedModel, str]:
    """The model at ``where`` as ``kind`` ("auto" is read from its config); a name that is
    neither a folder here nor loadable from the hub raises FileNotFoundError."""
    try:
        if kind == "auto":
            hub_kw = {k: kw[k] for k in ("revision", "trust_remote_code") if k in kw}
            kind = detect_kind(AutoConfig.from_pretrained(where, **hub_kw))
        cls = AutoModelForCausalLM if kind == "causal" else AutoModel
        return cls.from_pretrained(where, **kw), kind
    except OSError as e:
        if Path(where).is_dir() and (Path(where) / "config.json").exists():
            raise FileNotFoundError(f"model folder {where} has a config.json but its weights could not be read "
                                    f"({e}); copy the weight files (model.safetensors or pytorch_model.bin, "
                                    "or their shards) into it, or point to a complete checkpoint") from None
        if Path(where).exists():
            raise
        raise FileNotFoundError(
            f"model {source} is not a folder here and could not be loaded from the hub ({e.__class__.__name__}); "
            "train the default with `inforidge demo` (then pass runs/demo) or give a model folder or hub name"
        ) from e


def load(
    source: str | Path,
    *,
    tokenizer: str | Path | PreTrainedTokenizerBase | None = None,
    kind: str = "auto",
    dtype: str | torch.dtype | None = None,
    device: str | torch.device | None = None,
    device_map: str | dict | None = None,
    revision: str | None = None,
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
    block_path: str | None = None,
    final_norm_path: str | None = None,
    padding_side: str = "left",
    validate: bool = True,
    gguf_file: str | None = None,
) -> LoadedModel:
    """Load a model, its tokenizer and its parts, in eval mode; the one entry point of every command.

    Args:
        source: a run folder (``runs/<name>``: its ``model/``), a model folder, a Trainer
            checkpoint folder (its tokenizer may live in its run, see :func:`tokenizer_folder`),
            a hub name, or a GGUF source: a ``.gguf`` file, a folder with ``gguf_file``, or
            ``smollm2`` / ``pkg:<module>`` (converted once to a cached plain folder, see
            :mod:`inforidge.models.gguf`).
        tokenizer: a tokenizer object, or a folder / hub name to load one from (default: the
            source's). Either way it is prepared by :func:`prepare_tokenizer` (in place).
        kind: "causal" (``AutoModelForCausalLM``), "encoder" (``AutoModel``) or "auto" (from
            the config's ``architectures``, see :func:`~inforidge.models.parts.detect_kind`).
        dtype: weight dtype name ("float32", "bfloat16", "auto"...) or torch dtype; None: the
            transformers default.
        device: where to move the model after loading; device_map: shard it instead (not both).
        revision, attn_implementation, trust_remote_code: passed to ``from_pretrained``
            (``revision`` and ``trust_remote_code`` to the tokenizer too when it comes from
            ``source``).
        block_path, final_norm_path: overrides of the part names (causal LMs only), see
            :func:`~inforidge.models.parts.locate_parts`.
        padding_side: the causal LM's padding side; an encoder always pads on the right
            (its absolute positions start at the first token).
        validate: run :func:`~inforidge.models.validate.validate_parts` on the parts (a
            tiny forward pass; raises ValueError naming the override to pass).
        gguf_file: the ``.gguf`` file name inside the folder ``source``.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    if device is not None and device_map is not None:
        raise ValueError(f"pass device ({device}) or device_map ({device_map}), not both")
    source = resolve_gguf(source, gguf_file)
    where = model_folder(source)
    options = {"dtype": torch_dtype(dtype), "device_map": device_map, "revision": revision,
               "attn_implementation": attn_implementation}
    kw = {"trust_remote_code": trust_remote_code, **{k: v for k, v in options.items() if v is not None}}
    model, kind = _from_pretrained(where, kind, source, **kw)
    if kind != "causal" and (block_path or final_norm_path):
        raise ValueError(f"block_path / final_norm_path name parts of a causal LM; {source} loads as an {kind}")
    model.eval()
    if device is not None:
        model.to(device)

    side = padding_side if kind == "causal" else "right"
    if isinstance(tokenizer, PreTrainedTokenizerBase):
        tok = prepare_tokenizer(tokenizer, side)
    elif tokenizer is not None:
        tok = load_tokenizer(tokenizer, trust_remote_code=trust_remote_code, padding_side=side)
    else:
        own = tokenizer_folder(where) if Path(where).is_dir() else None
        tok = load_tokenizer(own or where, revision=revision, trust_remote_code=trust_remote_code, padding_side=side)

    parts = None
    if kind == "causal":
        parts = locate_parts(model, block_path=block_path, final_norm_path=final_norm_path)
        if validate:
            validate_parts(parts, tok)
    return LoadedModel(model, tok, parts, kind)


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


def load_for_run(config: ModelConfig, task: TaskData) -> LoadedModel:
    """The model a run fine-tunes, validated: the pretrained LM ``config.name_or_path`` through
    :func:`load` (with the ``model.*`` options, cut to its first ``keep_blocks`` blocks), or
    the default from-scratch GPT-2 with the task's word tokenizer."""
    paths = {"block_path": config.block_path, "final_norm_path": config.final_norm_path}
    if config.name_or_path:
        loaded = load(config.name_or_path, kind="causal", **config.from_pretrained_kwargs(), **paths,
                      gguf_file=config.gguf_file, validate=config.keep_blocks is None)
        if config.keep_blocks is None:
            return loaded
        model, tokenizer = truncate_blocks(loaded.model, config.keep_blocks, **paths), loaded.tokenizer
    else:
        if task.vocabulary is None:
            raise ValueError(f"task {task.name!r} has no closed vocabulary; set model.name_or_path to a pretrained LM")
        tokenizer = build_word_tokenizer(task.vocabulary)
        model = default_gpt2(
            len(tokenizer), n_layer=config.n_layer, n_embd=config.n_embd, n_head=config.n_head, seed=config.seed,
            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    parts = locate_parts(model, **paths)
    validate_parts(parts, tokenizer)
    return LoadedModel(model, tokenizer, parts, "causal")

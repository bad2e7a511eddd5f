"""Worked example 2: null-corrected mutual information on activations you already have.

No InfoRidge model code: any per-layer activations (a TransformerLens ``ActivationCache``, an
nnsight trace, your own hooks) as a dict ``layer -> (N, D)`` tensor, and a target per sample
(here a class label, one-hot). ``inforidge.info`` gives the raw MI, the permutation null, the
corrected MI and its permutation p-value per layer.

    python examples/activations_you_have.py
"""

from __future__ import annotations

import torch

from inforidge.info import estimate_information


def fake_cache(n: int = 200, d: int = 64, layers: int = 6, seed: int = 0) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
    """Stand-in for e.g. ``{l: cache["resid_post", l][:, -1] for l in range(layers)}``: the class
    signal rises towards the middle layers and fades again."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 5, (n,), generator=g)
    signal = torch.randn(5, d, generator=g)
    strength = [0.2, 0.6, 1.2, 1.2, 0.6, 0.2][:layers]
    cache = {layer: strength[layer] * signal[labels] + torch.randn(n, d, generator=g) for layer in range(layers)}
    return cache, labels


def main() -> None:
    cache, labels = fake_cache()
    x = torch.stack([cache[layer] for layer in sorted(cache)])  # (L, N, D)
    y = torch.nn.functional.one_hot(labels).double()  # (N, classes)
    est = estimate_information(x, y, n_permutations=50, seed=0)  # Gaussian kernel, sigma 1, alpha 1, bits
    print("layer  raw MI  null mean  corrected  p (resolution 1/51)")
    for layer in range(x.shape[0]):
        print(f"{layer:5d}  {est.mi[layer]:.3f}  {est.null_mean[layer]:9.3f}  {est.corrected[layer]:9.3f}  "
              f"{est.p_value[layer]:.3f}")
    peak = int(est.corrected.argmax())
    print(f"corrected MI peaks at layer {peak}")


if __name__ == "__main__":
    main()

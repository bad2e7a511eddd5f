"""Worked example 3: a checkpoint sweep: measure the saved checkpoints of a training run after the
fact, all on the same evaluation subsamples, into one table with figures and a report.

    python examples/checkpoint_sweep.py --out runs/example-sweep
    (the same from the shell: inforidge sweep runs/example-sweep/run)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from inforidge.config.loading import load_config
from inforidge.config.settings import MeasureSettings
from inforidge.models.checkpoints import discover_checkpoints
from inforidge.pipelines.run import run
from inforidge.pipelines.sweep import sweep
from inforidge.tasks.registry import build_task


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, default=Path("runs/example-sweep"))
    args = p.parse_args()

    # A short run that keeps its checkpoints (any Trainer output_dir with checkpoint-<N> works too).
    config = load_config(None, [
        f"output_dir={args.out}", "name=run", "model.n_layer=2", "model.n_embd=32", "model.n_head=2",
        "task.n_train=512", "task.n_validation=32", "task.n_test=120", "training.max_steps=24",
        "training.batch_size=32", "training.save_steps=8", "training.keep_checkpoints=true",
        "tracking.steps=[0]", "tracking.measure.n_samples=40", "tracking.measure.seeds=[0]",
        "tracking.measure.n_permutations=5", "tracking.ridge_bootstrap=0", "analyses.attention=false",
        "analyses.residual_scaling=false",
    ])
    run(config, progress=False)

    checkpoints = discover_checkpoints(args.out / "run")
    print("checkpoints:", ", ".join(f"{c.name} (step {c.step})" for c in checkpoints))
    result = sweep(checkpoints, build_task(config), MeasureSettings(n_samples=40, seeds=[0, 1], n_permutations=5),
                   args.out / "sweep", progress=False)
    f = result.table.frame
    ridge = f[(f["metric"] == "predictive_information_corrected") & (f["final_norm"] == "post")]
    print(ridge.pivot_table(index="layer", columns=["split", "step"], values="value").round(3).to_string())


if __name__ == "__main__":
    main()

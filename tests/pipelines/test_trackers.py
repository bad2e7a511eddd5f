"""The callback's scalars reach the trackers in ``report_to`` with every usual idiom, quietly,
grouped one chart per metric and split, with the layer-curve and heatmap figures."""

import copy
import logging

import matplotlib
import pytest
from transformers import Trainer, TrainerCallback, TrainingArguments

from inforidge.config.settings import MeasureSettings
from inforidge.measure.predictive import Evaluator
from inforidge.pipelines.tracking import (
    InfoRidgeCallback,
    layer_series,
    summary_scalars,
    tensorboard_layout,
)
from inforidge.results.table import ResultsTable
from inforidge.tasks.tokenize import collator, tokenize_for_next_token

IDIOMS = ("callbacks", "add_callback", "attach")


def _train(model, tokenizer, task, tmp_path, idiom, report_to, disable_tqdm=True, steps=(0, 2), extra=()):
    settings = MeasureSettings(n_samples=16, seeds=[0], n_permutations=2)
    ev = Evaluator(tokenizer, {"id": task.splits["test_id"], "ood": task.splits["test_ood"]}, settings)
    cb = InfoRidgeCallback(ev, ResultsTable(), steps=list(steps))
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=4, per_device_train_batch_size=16,
                             report_to=report_to, use_cpu=True, save_strategy="no", logging_steps=1,
                             disable_tqdm=disable_tqdm)
    trainer = Trainer(model=copy.deepcopy(model), args=args, callbacks=[cb, *extra] if idiom == "callbacks" else list(extra),
                      train_dataset=tokenize_for_next_token(task.splits["train"], tokenizer),
                      data_collator=collator(tokenizer))
    if idiom == "add_callback":
        trainer.add_callback(cb)
    elif idiom == "attach":
        cb.attach(trainer)
    trainer.train()
    return trainer, cb


def _events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs = {p.parent for p in folder.rglob("events.out.tfevents.*")}
    assert len(runs) == 1, f"one TensorBoard run folder expected, found {runs}"
    ea = EventAccumulator(str(runs.pop()), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    ea.Reload()
    return ea


@pytest.mark.parametrize("idiom", IDIOMS)
def test_every_idiom_logs_to_tensorboard(idiom, tiny_gpt2, word_tokenizer, tiny_task, tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    from tensorboard.plugins.custom_scalar import layout_pb2

    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "tb"))
    _, cb = _train(tiny_gpt2, word_tokenizer, tiny_task, tmp_path, idiom, ["tensorboard"])
    ea = _events(tmp_path / "tb")
    tags = ea.Tags()
    ours = [t for t in tags["scalars"] if t.startswith(("train/info", "train/gain", "train/early_exit"))]
    expected = {f"train/{k}" for k in summary_scalars(cb.table.frame.to_dict("records"))}
    # 3 layers x 2 splits x (info, info_corrected) + 2 gain layers x 2 splits + 3 early-exit layers x 3 splits
    assert set(ours) == expected and len(ours) == 25, ours
    assert [e.step for e in ea.Scalars("train/info/id/layer_01")] == [0, 2, 4]
    assert "train/loss" in tags["scalars"], "the Trainer's own logs are unchanged"
    # the layer curves at every measurement, the heatmap once at the end
    assert [e.step for e in ea.Images("inforidge/layer_curves")] == [0, 2, 4]
    assert [e.step for e in ea.Images("inforidge/information_heatmap")] == [4]
    # one chart per metric and split (custom scalars), a line per layer
    config = ea.Tensors("custom_scalars__config__")[0].tensor_proto.string_val[0]
    layout = layout_pb2.Layout.FromString(config)
    charts = {c.title: list(c.multiline.tag) for cat in layout.category for c in cat.chart}
    assert set(charts) == {"info/id", "info/ood", "info_corrected/id", "info_corrected/ood", "gain/id", "gain/ood",
                           "early_exit/all", "early_exit/id", "early_exit/ood"}
    assert charts["info/id"] == [r"^train/info/id/layer_\d+$"]


def test_the_console_does_not_show_the_per_layer_scalars(tiny_gpt2, word_tokenizer, tiny_task, tmp_path, capsys,
                                                         caplog):
    caplog.set_level(logging.INFO)
    trainer, _ = _train(tiny_gpt2, word_tokenizer, tiny_task, tmp_path, "callbacks", "none", disable_tqdm=False)
    out = capsys.readouterr()
    shown = out.out + out.err + caplog.text
    assert "'loss'" in shown, "the progress callback still prints the Trainer's logs"
    assert "layer_0" not in shown and "info/id" not in shown
    assert sum("info/id/layer_01" in h for h in trainer.state.log_history) == 3, "but log_history has them"


def test_printer_callback_does_not_print_them_either(tiny_gpt2, word_tokenizer, tiny_task, tmp_path, capsys):
    _train(tiny_gpt2, word_tokenizer, tiny_task, tmp_path, "add_callback", "none", disable_tqdm=True, steps=(2,))
    out = capsys.readouterr().out
    assert "'loss'" in out and "layer_0" not in out


def test_outside_a_trainer_it_warns_that_trackers_get_nothing(tiny_gpt2, word_tokenizer, tiny_task, caplog):
    from types import SimpleNamespace

    settings = MeasureSettings(n_samples=16, seeds=[0], n_permutations=2)
    ev = Evaluator(word_tokenizer, {"id": tiny_task.splits["test_id"], "ood": tiny_task.splits["test_ood"]}, settings)
    cb = InfoRidgeCallback(ev, ResultsTable(), steps=[0])
    state = SimpleNamespace(global_step=0, is_world_process_zero=True, log_history=[], epoch=None, max_steps=0)
    cb.on_step_end(None, state, None, model=tiny_gpt2)
    assert "not to the trackers" in caplog.text and "info/id/layer_01" in state.log_history[0]


def test_figures_leave_the_matplotlib_backend_alone(tiny_gpt2, word_tokenizer, tiny_task, tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "tb"))
    before = matplotlib.rcParams._get_backend_or_none()
    _train(tiny_gpt2, word_tokenizer, tiny_task, tmp_path, "callbacks", ["tensorboard"], steps=(4,))
    assert matplotlib.rcParams._get_backend_or_none() == before


def test_layout_and_series_group_by_metric_and_split():
    rows = [{"metric": "predictive_information", "final_norm": "post", "split": s, "layer": layer, "step": step,
             "value": float(step + layer)} for s in ("id", "ood") for layer in range(3) for step in (0, 5)]
    layout = tensorboard_layout(summary_scalars(rows))
    assert layout == {"InfoRidge info": {"info/id": ["Multiline", [r"^train/info/id/layer_\d+$"]],
                                         "info/ood": ["Multiline", [r"^train/info/ood/layer_\d+$"]]}}
    import pandas as pd

    series = layer_series(pd.DataFrame(rows))
    steps, ys, keys = series["info/ood"]
    assert steps == [0, 5] and keys == ["layer_00", "layer_01", "layer_02"] and ys[2] == [2.0, 7.0]


@pytest.mark.slow
def test_wandb_offline_gets_scalars_charts_and_figures(tiny_gpt2, word_tokenizer, tiny_task, tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    try:
        _, cb = _train(tiny_gpt2, word_tokenizer, tiny_task, tmp_path, "callbacks", ["wandb"])
        summary = dict(wandb.run.summary)
    finally:
        wandb.finish()
    df = cb.table.frame
    last = summary_scalars(df[df["step"] == 4].to_dict("records"))
    assert summary["train/info/ood/layer_02"] == pytest.approx(last["info/ood/layer_02"])
    # line series (one chart per metric and split) and the two figures
    assert {"inforidge/info/id_table", "inforidge/gain/ood_table", "inforidge/layer_curves",
            "inforidge/information_heatmap"} <= set(summary)
    assert summary["train/global_step"] == 4


def test_sweep_and_layers_refuse_a_tracker_they_cannot_write():
    from inforidge.pipelines.tracking import check_report_to

    assert check_report_to("none") == [] and check_report_to("tensorboard") == ["tensorboard"]
    with pytest.raises(ValueError, match="wandb sync --sync-tensorboard"):
        check_report_to("tensorboard,wandb")


class _StopAt(TrainerCallback):
    def __init__(self, at):
        self.at = at

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.at:
            control.should_training_stop = True


def test_a_run_stopped_early_logs_its_last_measurement_and_heatmap(tiny_gpt2, word_tokenizer, tiny_task, tmp_path,
                                                                   monkeypatch):
    pytest.importorskip("tensorboard")
    from transformers.integrations import TensorBoardCallback

    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "tb"))
    trainer, _ = _train(tiny_gpt2, word_tokenizer, tiny_task, tmp_path, "callbacks", ["tensorboard"], steps=(0,),
                        extra=[_StopAt(3)])
    ea = _events(tmp_path / "tb")
    assert [e.step for e in ea.Scalars("train/info/id/layer_01")] == [0, 3]
    assert [e.step for e in ea.Images("inforidge/information_heatmap")] == [3]
    tb = next(cb for cb in trainer.callback_handler.callbacks if isinstance(cb, TensorBoardCallback))
    assert tb.tb_writer is None, "the writer reopened after train end is closed again"

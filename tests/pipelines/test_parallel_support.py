"""Sharded-parameter training (FSDP, ZeRO-3) is refused before anything is measured; data
parallel and single-process arguments pass."""

import pytest
from transformers import TrainingArguments

from inforidge.pipelines.tracking import InfoRidgeCallback, check_supported_parallelism


def test_fsdp_is_refused_with_the_supported_setups_named(tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path), fsdp=True, report_to="none")
    with pytest.raises(ValueError, match="FSDP.*DDP.*inforidge sweep"):
        check_supported_parallelism(args)


def test_zero3_is_refused(monkeypatch):
    import transformers.integrations as integrations

    class Args:
        fsdp = []
        deepspeed = {"zero_optimization": {"stage": 3}}

    monkeypatch.setattr(integrations, "is_deepspeed_zero3_enabled", lambda: True)
    with pytest.raises(ValueError, match="ZeRO-3"):
        check_supported_parallelism(Args())
    monkeypatch.setattr(integrations, "is_deepspeed_zero3_enabled", lambda: False)
    check_supported_parallelism(Args())  # ZeRO 0-2 keep whole weights on every rank


def test_plain_and_ddp_arguments_pass_and_the_callback_checks_first(tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none")
    check_supported_parallelism(args)

    class Sharded:
        fsdp = True

    cb = InfoRidgeCallback.__new__(InfoRidgeCallback)  # the check runs before any use of the evaluator
    with pytest.raises(ValueError, match="FSDP"):
        cb.on_train_begin(Sharded(), None, None)

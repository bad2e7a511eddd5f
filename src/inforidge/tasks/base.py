"""Task records shared by every task: a prompt, a single-token target and metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from inforidge._optional import require

if TYPE_CHECKING:
    import datasets


def make_record(prompt: str, target: str, split: str, **metadata: Any) -> dict:
    """One sample: ``prompt`` text, ``target`` text (one token), ``split`` "id" or "ood"."""
    if split not in ("id", "ood"):
        raise ValueError(f"split must be 'id' or 'ood'; got {split!r}")
    return {"prompt": prompt, "target": target, "split": split, **metadata}


@dataclass
class TaskData:
    """Records of a task by split name ("train", "validation", "test_id", "test_ood").

    ``vocabulary`` lists every word when the task brings its own word-level tokenizer
    (None for tasks that use a pretrained model's tokenizer).
    """

    name: str
    splits: dict[str, list[dict]]
    vocabulary: list[str] | None = None
    signal_token_prefix: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for split, records in self.splits.items():
            if not records:
                raise ValueError(
                    f"task {self.name!r}: split {split!r} is empty; give it samples or drop it"
                )

    def dataset(self, split: str) -> datasets.Dataset:
        """The split as a ``datasets.Dataset`` (columns prompt, target, split, metadata...)."""
        if split not in self.splits:
            raise KeyError(f"task {self.name!r} has no split {split!r}; it has {sorted(self.splits)}")
        return require("datasets", "TaskData.dataset").Dataset.from_list(self.splits[split])

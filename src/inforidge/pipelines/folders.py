"""Output folders: checked before a command writes anything."""

from __future__ import annotations

from pathlib import Path


def check_output_folder(path: str | Path, what: str = "the output folder") -> Path:
    """``path`` as a Path; a ValueError when it, or a folder above it, is an existing file
    (``mkdir`` would fail with a bare OSError after the command had done its work)."""
    p = Path(path)
    for level in (p, *p.parents):
        if level.exists():
            if not level.is_dir():
                where = "" if level == p else f" ({level} above it)"
                raise ValueError(f"{what} {p} cannot be created: {level} is a file{where}; "
                                 "choose another output folder (--out, or output_dir/name for a run)")
            break
    return p

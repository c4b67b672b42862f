"""A run's final model checkpoint: written atomically, checked when read back."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import XhbenchError
from .config import to_dict

__all__ = ["CHECKPOINT", "load_checkpoint", "save_checkpoint"]

CHECKPOINT = "checkpoint.pt"


def save_checkpoint(path: Path, method, config: Any, spec) -> None:
    """``{"method", "config", "spec", "state"}`` to ``path`` (temporary file, then rename)."""
    import torch

    tmp = Path(path).with_name(Path(path).name + ".tmp")
    torch.save({"method": method.name, "config": to_dict(config), "spec": spec.__dict__,
                "state": method.state_dict()}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, method, spec) -> dict[str, Any]:
    """Load a checkpoint into ``method`` after checking it was made for it.

    Raises:
        XhbenchError: unreadable file, another method, or other channels or classes.
    """
    import torch

    try:
        data = torch.load(path, map_location=method.device, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise XhbenchError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); "
                           "delete it to train again") from exc
    if not isinstance(data, dict) or not {"method", "spec", "state"} <= set(data):
        raise XhbenchError(f"checkpoint {path} is not an xhbench checkpoint")
    if data["method"] != method.name:
        raise XhbenchError(f"checkpoint {path} was made by method {data['method']!r}, "
                           f"not {method.name!r}")
    for key in ("in_channels", "out_channels"):
        saved, wanted = tuple(data["spec"].get(key, ())), tuple(getattr(spec, key))
        if saved != wanted:
            raise XhbenchError(f"checkpoint {path} has {key} {saved}, the task needs {wanted}")
    try:
        method.load_state_dict(data["state"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise XhbenchError(f"checkpoint {path} does not fit method {method.name!r}: {exc}"
                           ) from exc
    return data

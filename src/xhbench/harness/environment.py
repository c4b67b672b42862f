"""What produced a run: versions, git revision, device, hardware."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from .. import __version__

__all__ = ["environment", "git_revision", "pick_device", "peak_memory_mb"]

_PACKAGES = ("torch", "monai", "numpy", "scipy", "nibabel", "pandas", "pluggy")


def git_revision(source: Path | None = None) -> str | None:
    """The commit of the code that runs: the git checkout that tracks the package's own
    folder (``source``, by default the imported ``xhbench``), with ``-dirty`` when any file
    in that folder differs from it. ``None`` when the folder is not tracked by git (an
    installed package, even one inside another project's checkout)."""
    package = (source or Path(__file__).resolve().parents[1]).resolve()

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(package), *args], capture_output=True,
                              text=True, timeout=5, check=True).stdout.strip()

    try:
        git("ls-files", "--error-unmatch", "__init__.py")  # fails unless tracked here
        head = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--", ".")
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "")


def pick_device(requested: str | None):
    """CUDA when present unless overridden; asking for CUDA without it is an error."""
    import torch

    from ..errors import UsageError

    if requested is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {requested}: CUDA is not available on this machine")
    return device


def peak_memory_mb(device) -> float:
    """Peak GPU memory on CUDA, else the process's peak resident memory."""
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def environment(device) -> dict[str, Any]:
    import torch

    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    info: dict[str, Any] = {
        "xhbench_version": __version__,
        "git_revision": git_revision(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "packages": versions,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info

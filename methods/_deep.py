"""What the paper's deep baselines (DH, UH-BDNN, DeepBit) share; not a method itself.

* :func:`check_number`, :func:`check_int`, :func:`check_hidden`: clear
  :class:`ConfigError` for out-of-range parameters;
* :func:`seeded`: every torch random draw of a fit comes from the method's
  seed, in a forked generator (the caller's random state is untouched);
* :func:`minibatch_epoch`: one epoch of mini-batch steps (finite-loss check,
  per-component means), the inner loop of DH, DeepBit and IAH;
* :func:`train_early_stopped`: the epoch loop of ``methods/_convergence.py``:
  train an epoch, measure the method's own objective on the held-out training
  items, keep the best epoch's state, stop when it stops improving, and record
  both in ``history_``.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch

from hashbench import ConfigError, DataError

from ._convergence import EarlyStopping, check_convergence_params


def check_number(who: str, name: str, v: Any, *, zero_ok: bool = True, below: float | None = None) -> None:
    """``v`` a finite number >= 0 (> 0 unless ``zero_ok``; < ``below`` when given)."""
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v) \
            or v < 0 or (v == 0 and not zero_ok) or (below is not None and v >= below):
        kind = "non-negative" if zero_ok else "positive"
        extra = f" below {below}" if below is not None else ""
        raise ConfigError(f"{who}: {name} must be a {kind} number{extra}, got {v!r}")


def check_int(who: str, name: str, v: Any, *, minimum: int = 1) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise ConfigError(f"{who}: {name} must be an integer >= {minimum}, got {v!r}")


def check_hidden(who: str, hidden: Any, n_layers: int | None = None) -> tuple[int, ...]:
    """``hidden`` as a tuple of positive layer sizes (``n_layers`` of them when given, else at least one)."""
    try:
        sizes = tuple(hidden)
    except TypeError:
        sizes = ()
    if (len(sizes) != n_layers if n_layers is not None else not sizes) or any(isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1
                                     for h in sizes):
        count = n_layers if n_layers is not None else "one or more"
        raise ConfigError(f"{who}: hidden must be {count} positive layer sizes, got {hidden!r}")
    return tuple(int(h) for h in sizes)


def check_common(who: str, est: Any) -> None:
    """The convergence parameters every deep baseline has, and ``device``."""
    check_convergence_params(who, est.max_epochs, est.patience, est.min_delta)
    check_number(who, "val_fraction", est.val_fraction, below=1.0)
    if not isinstance(est.device, str):
        raise ConfigError(f"{who}: device must be a string ('auto', 'cpu', 'cuda', ...), got {est.device!r}")


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(int(seed))
        yield


def minibatch_epoch(
    batches: Iterable[Any],
    loss_of: Callable[[Any], tuple[torch.Tensor, dict[str, float]]],
    opt: torch.optim.Optimizer,
    *,
    failure: str,
    min_size: int = 2,
    after_step: Callable[[], None] | None = None,
) -> dict[str, float]:
    """One optimiser step per batch of rows; returns the per-batch mean of each part ``loss_of`` reports.

    Batches with fewer than ``min_size`` rows are skipped (a trailing item has no
    pair, spread or triplet to learn from). A non-finite loss stops the fit with a
    :class:`DataError`: ``failure`` says whose loss and where, with ``{}`` for the value.
    """
    sums: dict[str, float] = {}
    steps = 0
    for rows in batches:
        if len(rows) < min_size:
            continue
        loss, parts = loss_of(rows)
        if not torch.isfinite(loss):
            raise DataError(failure.format(loss.item()) + "; lower lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if after_step is not None:  # e.g. DH's exact orthogonality: a projection after every step
            after_step()
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v
        steps += 1
    return {k: v / max(steps, 1) for k, v in sums.items()}


def train_early_stopped(
    stopper: EarlyStopping,
    epoch: Callable[[int], dict[str, float]],
    heldout: Callable[[], float],
    get_state: Callable[[], Any],
    set_state: Callable[[Any], None],
    history: dict[str, list[float]],
) -> None:
    """Up to ``stopper.max_epochs`` epochs; then the best held-out epoch's state is restored.

    ``epoch(e)`` trains one epoch and returns its per-component training means;
    ``heldout()`` is the objective on the held-out items after it. Both go to
    ``history`` (the held-out value as ``heldout_objective``), one entry per epoch.
    With ``max_epochs = 0`` nothing is trained and the initial state stays.
    """
    for e in range(int(stopper.max_epochs)):
        parts = epoch(e)
        value = float(heldout())
        for k, v in parts.items():
            history.setdefault(k, []).append(float(v))
        history.setdefault("heldout_objective", []).append(value)
        if stopper.update(value, get_state()):
            break
    if stopper.best_state is not None:
        set_state(stopper.best_state)


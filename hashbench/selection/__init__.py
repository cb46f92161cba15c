"""Model selection: the same procedure for every method, on a validation split of the training role.

* :mod:`.validation` -- the validation split (validation queries V and fit
  items F, both from the training role; seeded, saved with the results);
* :mod:`.space` -- search spaces as data (``Hasher.search_space``), validated,
  and the trials drawn from them (a seeded order of the grid, cut at the budget);
* :mod:`.criteria` -- the two criteria, ``labels`` and ``label-free``;
* :mod:`.search` -- the trial loop, stored and resumable;
* :mod:`.record` -- the defaults record (statuses included) built from selections;
* :mod:`.display` -- the trials of a selection as a plain-text table.

A library: it imports nothing of the commands. ``python -m hashbench tune``
(:mod:`hashbench.tune`) composes it with the plan and the features stage, as a run does.

Why no optimisation library: the spaces are small grids, the budget is a
number of trials shared by every method, and a resumed search must run exactly
the trials an uninterrupted one would have run. A seeded permutation of the grid
cut at the budget does that in a few lines; optuna's GridSampler draws the next
unvisited point from a generator that restarts on resume (another subset after an
interruption) and would add optuna, SQLAlchemy and alembic to the dependencies.
"""

from .criteria import CRITERIA
from .display import format_records
from .search import (SELECTION_DIR, TrainingData, all_failed, load_selection, rank_key, run_selection,
                     selection_folder, summary)
from .space import check_search_space, grid_size, plan_trials
from .validation import ValidationSplit, validation_split

__all__ = [
    "CRITERIA",
    "SELECTION_DIR",
    "TrainingData",
    "all_failed",
    "ValidationSplit",
    "check_search_space",
    "format_records",
    "grid_size",
    "load_selection",
    "plan_trials",
    "rank_key",
    "run_selection",
    "selection_folder",
    "summary",
    "validation_split",
]

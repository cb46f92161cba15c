"""How the tag methods' defaults were chosen: read from the shipped selection record.

``selected_defaults.json`` (written by ``python -m hashbench.tune_defaults``)
holds every trial of the selection that chose the defaults; each method class
states the outcome in ``defaults_chosen_by``, which every result records.
"""

from __future__ import annotations

import json
from importlib.resources import files


def defaults_chosen_by(method: str) -> str:
    """One sentence: which defaults were selected for ``method``, how, and where the record is."""
    record = json.loads(files("hashbench_methods").joinpath("selected_defaults.json").read_text())
    entry = record["methods"][method]
    values = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(entry["defaults"].items()))
    how = "" if entry["how"] == "selected" else f" ({entry['how']})"
    return (f"{values}{how}: selected by `tune` on {record['dataset']} (criterion {record['criterion']}, "
            f"{record['budget'][0]} trials, {record['bits'][0]} bits); record: hashbench_methods/selected_defaults.json")

"""Published numbers as data: what papers report, row by row, with where each number comes from.

Each source is a CSV file with one published number per row and these columns:

==========  ==================================================================================
paper       the paper, as cited ("Gattupalli & Li 2018, ..., arXiv:1806.05804")
table       where in the paper ("Table 2")
dataset     hashbench's dataset name ("mirflickr25k")
protocol    the dataset's protocol in hashbench ("paper")
options     JSON object: dataset options the setting needs ({"label_set": "38"}); {} or empty for none
split       JSON object: the paper's role sizes ({"query": 2000, "database": 16000, ...})
weights     the backbone weights the paper used ("imagenet")
metric      hashbench's metric name ("mAP@50000")
bits        code length
name        the row as the paper prints it ("ITQ [13]")
kind        "non-deep" or "deep", as the paper groups it
method      the hashbench method that implements it ("itq"); empty when there is none
params      JSON object: parameters our cell must have to be compared ({"aggregation": "idf"})
value       the published number
note        anything a reader should know (a guess, a correction; "recalled" where the number was not
            read from the paper itself)
backbone    optional: the backbone the paper's features came from, a hashbench backbone name
            ("vgg16-fc7"); empty: not stated (the UDHT paper's AlexNet is the default)
selection   optional: how the paper's number was chosen when its code chose it on labels
            ("test queries": the best epoch by the test queries' mAP); empty: not known to be
==========  ==================================================================================

A comparison carries what still differs as caveats: other backbone weights or network, another split
size, numbers selected on the test queries, recalled numbers.

A setting is (dataset, protocol, options, metric, bits); a results folder matches it when
its cells ran that dataset under that protocol with those options
(:func:`matching_rows`). The UDHT paper's Tables 2, 3 and 4 ship as ``udht2018.csv``; papers published
after it, as ``bihalf2021.csv`` and ``cibhash2021.csv`` (each file says where its numbers come from).
Another paper adds its numbers in a file of the same format, from a plugin package through
the entry-point group ``hashbench.published`` (the entry point names a CSV path, or a
callable returning one or a list of them), or at run time with :func:`register_published`.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from ..errors import ConfigError, DataError

__all__ = ["COLUMNS", "ENTRY_POINT_GROUP", "OPTIONAL_COLUMNS", "load_published", "matching_rows", "read_published_csv",
           "register_published", "sources"]

COLUMNS = ("paper", "table", "dataset", "protocol", "options", "split", "weights", "metric", "bits",
           "name", "kind", "method", "params", "value", "note")
#: columns a file may leave out (read as empty)
OPTIONAL_COLUMNS = ("backbone", "selection")
ENTRY_POINT_GROUP = "hashbench.published"
_HERE = Path(__file__).resolve().parent
_BUILT_IN = (_HERE / "udht2018.csv", _HERE / "bihalf2021.csv", _HERE / "cibhash2021.csv")
_REGISTERED: list[Path] = []


def _json_object(text: Any, column: str, where: str) -> dict[str, Any]:
    if text is None or (isinstance(text, float) and math.isnan(text)) or str(text).strip() == "":
        return {}
    try:
        value = json.loads(str(text))
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: column {column!r} is not JSON ({exc.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise DataError(f"{where}: column {column!r} must be a JSON object, got {text!r}")
    return value


def read_published_csv(path: str | Path) -> pd.DataFrame:
    """One source file, checked: every column present, numbers in [0, 1], JSON columns parsed.

    Adds ``source`` ("Table 2, <paper>") and ``file``. Raises :class:`DataError` naming the
    file and the row.
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise DataError(f"published numbers {path}: no such file") from None
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"published numbers {path}: cannot be read ({exc})") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"published numbers {path}: missing column(s) {', '.join(missing)}; "
                        f"expected: {', '.join(COLUMNS)}")
    for col in OPTIONAL_COLUMNS:
        if col not in frame.columns:
            frame[col] = ""
    rows = []
    for i, row in enumerate(frame.to_dict("records")):
        where = f"published numbers {path}, row {i + 2}"  # the header is line 1
        for col in ("paper", "table", "dataset", "protocol", "metric", "name"):
            if not row[col].strip():
                raise DataError(f"{where}: column {col!r} is empty")
        if not row["metric"].startswith(("mAP@", "P@", "R@")):
            raise DataError(f"{where}: metric {row['metric']!r} is not a hashbench metric name (mAP@K, P@N, R@rN)")
        try:
            bits = int(row["bits"])
            value = float(row["value"])
        except ValueError:
            raise DataError(f"{where}: bits {row['bits']!r} and value {row['value']!r} must be numbers") from None
        if bits <= 0 or not (0.0 <= value <= 1.0):
            raise DataError(f"{where}: bits must be positive and value within [0, 1], got {bits}, {value}")
        if row["kind"] not in ("deep", "non-deep", ""):
            raise DataError(f"{where}: kind must be 'deep' or 'non-deep', got {row['kind']!r}")
        rows.append({
            **row,
            "bits": bits,
            "value": value,
            "options": _json_object(row["options"], "options", where),
            "split": _json_object(row["split"], "split", where),
            "params": _json_object(row["params"], "params", where),
            "method": row["method"].strip() or None,
            "source": f"{row['table']}, {row['paper']}",
            "file": str(path),
        })
    return pd.DataFrame(rows, columns=[*COLUMNS, *OPTIONAL_COLUMNS, "source", "file"])


def register_published(path: str | Path) -> None:
    """Add a source file (same format as ``udht2018.csv``) for this session's reports."""
    path = Path(path)
    read_published_csv(path)  # refuse a bad file now, naming it
    if path.resolve() not in [p.resolve() for p in _REGISTERED]:
        _REGISTERED.append(path)
    load_published.cache_clear()


def _entry_point_files() -> list[Path]:
    out: list[Path] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            value = obj() if callable(obj) else obj
        except Exception as exc:
            raise ConfigError(f"entry point {ep.name!r} = {ep.value!r} (group {ENTRY_POINT_GROUP}) failed: "
                              f"{type(exc).__name__}: {exc}") from exc
        values: Iterable[Any] = value if isinstance(value, (list, tuple)) else [value]
        out += [Path(v) for v in values]
    return out


def sources() -> list[Path]:
    """Every source file: the built-in ones, entry points, then :func:`register_published`."""
    return [*_BUILT_IN, *_entry_point_files(), *_REGISTERED]


@lru_cache(maxsize=1)
def load_published() -> pd.DataFrame:
    """Every published number of every source, one row each."""
    frames = [read_published_csv(p) for p in sources()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=[*COLUMNS, *OPTIONAL_COLUMNS, "source", "file"])


def _same(a: Any, b: Any) -> bool:
    return str(a) == str(b)


def matching_rows(dataset: str, protocol: str | None, options: dict[str, Any],
                  published: pd.DataFrame | None = None) -> pd.DataFrame:
    """The published rows whose setting is this dataset, protocol and options (any metric and bits).

    ``options`` are the dataset's recorded options (a cell's ``dataset.fingerprint.config``);
    each option a published row names must have the same value there.
    """
    pub = load_published() if published is None else published
    if pub.empty:
        return pub
    keep = (pub["dataset"] == dataset) & (pub["protocol"].astype(str) == str(protocol))
    keep &= pub["options"].map(lambda o: all(k in options and _same(options[k], v) for k, v in o.items()))
    return pub[keep]

"""``python -m hashbench.tune_defaults --out methods/selected_defaults.json``: the selection run
behind the tag methods' shipped defaults, repeatable (the record: :mod:`hashbench.selection.defaults`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from .selection.defaults import BITS, SELECTED, TRIALS, build_record
from .selection.defaults import __doc__ as _RECORD_DOC
from .tune import TuneConfig, format_records, tune


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hashbench.tune_defaults", description=_RECORD_DOC,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="where to write the record (JSON)")
    p.add_argument("--results", type=Path, default=Path("results-defaults"), help="selection store (resumable)")
    p.add_argument("--methods", default=",".join(SELECTED))
    p.add_argument("--bits", type=int, default=BITS)
    p.add_argument("--trials", type=int, default=TRIALS)
    p.add_argument("--criterion", default="labels")
    p.add_argument("--also", default="label-free", help="another criterion to run and record beside it ('' for none)")
    args = p.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    common = dict(dataset="synthetic", methods=methods, bits=[args.bits], trials=args.trials, results=args.results,
                  progress=False)
    records = tune(TuneConfig(criterion=args.criterion, **common))
    print(format_records(records))
    extra = []
    if args.also:
        also = tune(TuneConfig(criterion=args.also, **common))
        print(format_records(also))
        extra = [{"method": r["method"], "criterion": r["criterion"], "chosen": r["chosen"],
                  "trials": [{"params": t["params"], "score": t["score"], "measure": t["measure"]}
                             for t in r["trials"]]} for r in also]
    record = build_record(records, criterion=args.criterion, extra=extra)
    args.out.write_text(json.dumps(record, indent=1, sort_keys=True, default=float) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

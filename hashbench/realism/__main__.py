"""``python -m hashbench.realism``: the realism report of the embedded default, and its docstring section.

* no option: print the report of ``synthetic`` (default options, split seed 0) beside the real figures;
* ``--docstring``: print the "What the default set measures like" section of the
  synthetic package's docstring, generated from that report;
* ``--write``: replace that section in ``hashbench/datasets/synthetic/__init__.py``.

Features come from the features stage (cached under the hashbench cache).
"""

from __future__ import annotations

import argparse
import os
import sys

from . import format_realism, reference_figures, synthetic_report
from ._docstring import SYNTHETIC_FILE, docstring_section, replace_section


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = argparse.ArgumentParser(prog="python -m hashbench.realism", description=__doc__.splitlines()[0])
    parser.add_argument("--docstring", action="store_true", help="print the docstring section")
    parser.add_argument("--write", action="store_true", help="write the docstring section into the synthetic package")
    args = parser.parse_args(argv)
    report, dataset = synthetic_report()
    if args.write:
        text = SYNTHETIC_FILE.read_text()
        SYNTHETIC_FILE.write_text(replace_section(text, docstring_section(report, dataset)))
        print(f"wrote the measured section of {SYNTHETIC_FILE}")
    elif args.docstring:
        print(docstring_section(report, dataset))
    else:
        print(format_realism(report, reference_figures()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How sensitive is UDHT to its learning rate, its hinge weight lambda2 and the loss reduction?

    python benchmarks/udht_sensitivity.py                          # the embedded default, 32 bits
    python benchmarks/udht_sensitivity.py --lr 1e-3,1e-2 --lambda2 10 --reductions mean
    python benchmarks/udht_sensitivity.py -D n_items=2000 --out /tmp/sens   # a smaller run

Validation mAP of ``udht-frozen`` over lr x lambda2 x reduction, as a Markdown table and a
heat map (one panel per reduction). Validation, never the queries: the validation split is the
one model selection uses (:func:`hashbench.selection.validation.validation_split`): a seeded
fraction (``--val-size``, 0.2) of the *training role* are validation queries, ranked against
the rest of the training role, which is also what each configuration is fitted on; relevance
comes from those training-role items' labels (:func:`hashbench.selection.criteria.labels_score`:
mAP@5000, ties scored tie-aware). Query and database-only items are never read.

Every other parameter is the method's default, so each run also stops early on its own
held-out L1 (a part of the fit items; see ``udht-frozen``); a configuration whose loss
diverges is shown as such (the ``sum`` reduction multiplies the gradients by the number of
pairs in a batch, ~2,500, so its stable learning rates are that much smaller).
Outputs: ``<out>/udht_sensitivity.md``, ``.csv``, ``.png``.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TQDM_DISABLE", "1")
# as the command line does: idle OpenMP threads sleep instead of spinning (on a shared machine
# spinning threads slow small-batch training by an order of magnitude; see this folder's README)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import hashbench  # noqa: E402
from hashbench.datasets import get_dataset  # noqa: E402
from hashbench.errors import DataError  # noqa: E402
from hashbench.features import BackboneSpec, extract_features  # noqa: E402
from hashbench.selection.criteria import labels_score  # noqa: E402
from hashbench.selection.validation import validation_split  # noqa: E402


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def _option(item: str) -> tuple[str, object]:
    key, _, value = item.partition("=")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def run_grid(args: argparse.Namespace) -> list[dict]:
    dataset = get_dataset(args.dataset, **dict(_option(o) for o in args.dataset_option))
    split = dataset.make_split(args.split_seed)
    train = np.asarray(split.train)  # the training role only: no query, no database-only item
    vsplit = validation_split(train.size, args.val_size, args.val_seed)
    backbone = BackboneSpec(weights=dataset.default_weights, seed=0, resize=dataset.default_resize,
                            crop=dataset.default_crop)
    feats, _ = extract_features(dataset, train, backbone, progress=False)
    feats = np.asarray(feats)
    labels = dataset.labels[train]
    tags = [dataset.tags[i] for i in train]
    fit, val = vsplit.fit, vsplit.val
    print(f"{dataset.results_key()}: training role {train.size} items -> fit on {fit.size}, "
          f"{val.size} validation queries (seed {args.val_seed}); {args.bits} bits")
    rows = []
    for reduction, lr, lam in itertools.product(args.reductions, args.lr, args.lambda2):
        params = {"lr": lr, "lambda2": lam, "reduction": reduction}
        t0 = time.perf_counter()
        try:
            h = hashbench.create("udht-frozen", bits=args.bits, seed=args.seed, device=args.device, **params)
            h.fit(feats[fit], tags=[tags[i] for i in fit])
            score = labels_score(h.encode(feats[val]), h.encode(feats[fit]), labels[val], labels[fit], args.topk)
            conv = h.fit_info_["convergence"]
            note = f"kept epoch {conv['best_epoch']} of {conv['epochs_run']}"
        except DataError as exc:  # the loss became NaN/inf: diverged
            score, note = float("nan"), f"diverged ({str(exc).split(';')[0].split(': ', 1)[-1]})"
        rows.append({**params, "val_mAP": score, "note": note, "seconds": round(time.perf_counter() - t0, 1)})
        print(f"  reduction={reduction:4s} lr={lr:<7g} lambda2={lam:<6g} validation mAP "
              f"{score:.4f}  ({note}, {rows[-1]['seconds']} s)", flush=True)
    return rows


def write_table(rows: list[dict], path: Path, args: argparse.Namespace) -> None:
    lines = [f"Validation mAP@{args.topk or 'all'} of udht-frozen ({args.bits} bits, {args.dataset}), "
             "training-role validation split; rows lambda2, columns lr.", ""]
    for reduction in args.reductions:
        lines += [f"reduction = {reduction}", "", "| lambda2 \\ lr | " + " | ".join(f"{lr:g}" for lr in args.lr) + " |",
                  "|---|" + "---|" * len(args.lr)]
        for lam in args.lambda2:
            cells = []
            for lr in args.lr:
                r = next(r for r in rows if (r["reduction"], r["lr"], r["lambda2"]) == (reduction, lr, lam))
                cells.append("diverged" if not np.isfinite(r["val_mAP"]) else f"{r['val_mAP']:.3f}")
            lines.append(f"| {lam:g} | " + " | ".join(cells) + " |")
        lines.append("")
    path.write_text("\n".join(lines))
    with open(path.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def write_heatmap(rows: list[dict], path: Path, args: argparse.Namespace) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * len(args.reductions) + 1.0, 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(args.reductions), squeeze=False)[0]
    finite = [r["val_mAP"] for r in rows if np.isfinite(r["val_mAP"])]
    vmin, vmax = (min(finite), max(finite)) if finite else (0.0, 1.0)
    im = None
    for ax, reduction in zip(axes, args.reductions):
        grid = np.full((len(args.lambda2), len(args.lr)), np.nan)
        for r in rows:
            if r["reduction"] == reduction:
                grid[args.lambda2.index(r["lambda2"]), args.lr.index(r["lr"])] = r["val_mAP"]
        im = ax.imshow(np.ma.masked_invalid(grid), origin="lower", cmap="viridis", vmin=vmin, vmax=vmax,
                       aspect="auto")
        ax.set_facecolor("0.85")  # diverged cells
        for (i, j), v in np.ndenumerate(grid):
            ax.text(j, i, "diverged" if not np.isfinite(v) else f"{v:.3f}", ha="center", va="center",
                    fontsize="small", color="black" if not np.isfinite(v) or v > (vmin + vmax) / 2 else "white")
        ax.set_xticks(range(len(args.lr)), [f"{v:g}" for v in args.lr])
        ax.set_yticks(range(len(args.lambda2)), [f"{v:g}" for v in args.lambda2])
        ax.set_xlabel("learning rate (lr)")
        ax.set_ylabel("lambda2 (hinge weight)")
        ax.set_title(f"reduction = {reduction}", fontsize="medium")
    if im is not None:
        fig.colorbar(im, ax=list(axes), label=f"validation mAP@{args.topk or 'all'}")
    fig.suptitle(f"udht-frozen, {args.bits} bits, {args.dataset}: validation mAP (training-role split)",
                 fontsize="medium")
    fig.savefig(path, dpi=120, metadata={"Software": None})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("-D", "--dataset-option", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--bits", type=int, default=32)
    p.add_argument("--lr", type=_floats, default=[1e-3, 1e-2, 3e-2])
    p.add_argument("--lambda2", type=_floats, default=[1.0, 10.0, 100.0])
    p.add_argument("--reductions", type=lambda s: s.split(","), default=["mean", "sum"])
    p.add_argument("--val-size", type=float, default=0.2, help="validation queries: a fraction of the training role")
    p.add_argument("--val-seed", type=int, default=0)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--topk", type=int, default=5000)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, default=Path("benchmarks/figures"))
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = run_grid(args)
    stem = args.out / "udht_sensitivity"
    write_table(rows, stem.with_suffix(".md"), args)
    write_heatmap(rows, stem.with_suffix(".png"), args)
    best = max((r for r in rows if np.isfinite(r["val_mAP"])), key=lambda r: r["val_mAP"], default=None)
    print(stem.with_suffix(".md").read_text())
    if best:
        print(f"best on validation: lr={best['lr']:g}, lambda2={best['lambda2']:g}, reduction={best['reduction']} "
              f"({best['val_mAP']:.4f})")
    print(f"written: {stem}.md, .csv, .png")


if __name__ == "__main__":
    main()

"""Is SMC worth its compute? Every method of :mod:`emosmc.baselines` on the same toy counterfactuals at
budgets of N samples' worth of UNet evaluations, judged by the toy world's ground truth. Prints JSON.

    python benchmarks/frontier.py                                    # 14 held-out faces x 2 targets, N = 1..32
    python benchmarks/frontier.py --faces 2 --budgets 1 4 --methods unguided best-of-n guided-smc   # a quick look

Resumable: every counterfactual's measures go to a CSV (``--csv``) as they are made; a run that stops
picks up at the first (method, budget) it has not finished, and ``--faces`` may grow later (only the new
counterfactuals are run). The JSON summary, the figure (true flip rate against UNet evaluations, one
line per method; identity against flip rate) and markdown tables are written from the whole CSV; a grid
of the first four counterfactuals by every method at ``--grid-budget`` from this invocation's runs (when
they were all in the CSV already, they are run again for the grid alone). One generator seeds each
batch, so a counterfactual's sample depends on the batch it ran in: a resumed or grid-only batch draws
other samples than the first run's, and KID is the mean of its batches' values.

Measures, per counterfactual: the true flip (the ground-truth rule,
:func:`emosmc.ground_truth.true_expression`), the judge's flip, the distance to the true
counterfactual in the expression region, identity (L1 outside the expression region, hair and skin
colour shift), MTCNN realism; per run: KID of the judge's features against held-out renders of other
identities, UNet evaluations, decodes and scorer backward passes per counterfactual, seconds per
counterfactual (state the thread count beside them), peak memory.
"""
import argparse
import csv
import resource
import sys
import time
from pathlib import Path

import torch
from results_json import emit

from emosmc.baselines import METHODS, method_settings
from emosmc.cli import add_config_args, config_from_args
from emosmc.data import images_to_tensor
from emosmc.evaluation import evaluate
from emosmc.labels import EMOTIONS
from emosmc.metrics import Realism, kid
from emosmc.pipeline import EmotionEditPipeline
from emosmc.profiles import get_profile
from emosmc.toy.assets import toy_faces
from emosmc.toy.faces import HELDOUT_SEED

ROOT = Path(__file__).resolve().parent
FIELDS = ["method", "budget", "cf", "face", "target", "true_flip", "unclear", "judge_flip", "classifier_p",
          "l1_expression", "outside_l1", "hair_shift", "skin_shift", "realism", "kid", "unet_evals",
          "decodes", "reward_grads", "seconds", "threads", "peak_mib"]
ORDER = (16, 8, 4, 1, 32)  # the budget the bars are about first, so a cut-short run still answers them


def counterfactuals(faces: int, per_face: int, seed: int = HELDOUT_SEED):
    """Face i shows EMOTIONS[i % 7]; it is edited towards ``per_face`` of the six others, rotating with i
    so that the targets are covered evenly. Returns images, identities, target names, source labels."""
    imgs, labels, ids, who = toy_faces(faces, seed)
    x = images_to_tensor(imgs)
    rows = []
    for i in range(faces):
        src = i % 7
        others = [t for t in range(7) if t != src]
        rows += [(i, others[(i + j) % 6]) for j in range(per_face)]
    idx = torch.tensor([i * 7 + i % 7 for i, _ in rows])
    return x[idx], [ids[i] for i, _ in rows], [EMOTIONS[t] for _, t in rows], rows


def peak_mib() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the process's peak so far (Linux: KiB)


def run_one(prof, pipe, judge, realism, ref_feats, method, budget, xs, idents, names, seed, base):
    config = method_settings(method, base, budget)
    t0 = time.time()
    out = pipe(xs, names, config, generator=torch.Generator().manual_seed(seed), progress=False)
    ev = evaluate(xs, out.images, names, prof, identities=idents, judge=judge, classifier_probs=out.target_probs,
                  seconds=time.time() - t0)
    with torch.no_grad():
        feats = judge.features(out.images).cpu()
    real = realism(out.images)
    run_kid = kid(feats, ref_feats) if len(feats) >= 2 else float("nan")
    n = len(xs)
    rows = []
    for i, r in enumerate(ev.records()):
        rows.append(dict(true_flip=int(r["true_flip"]), unclear=int(r["unclear"]), judge_flip=int(r["judge_flip"]),
                         classifier_p=r["classifier_prob"], l1_expression=r["l1_expression"],
                         outside_l1=r["identity"], hair_shift=r["hair_shift"], skin_shift=r["skin_shift"],
                         realism=float(real[i]), kid=run_kid, seconds=r["seconds"],
                         unet_evals=out.nfe["unet"] / n, decodes=out.nfe["decode"] / n,
                         reward_grads=out.smc.num_reward_grads / n, threads=torch.get_num_threads(),
                         peak_mib=peak_mib()))
    return rows, out.images


def _mean(rows, key):
    v = [float(r[key]) for r in rows if r[key] not in ("", "nan") and float(r[key]) == float(r[key])]
    return round(sum(v) / len(v), 3) if v else None


def summarise(all_rows, budgets):
    table = {}
    for m in METHODS:
        for b in budgets:
            rows = [r for r in all_rows if r["method"] == m and int(r["budget"]) == b]
            if not rows:
                continue
            s = {k: _mean(rows, k) for k in FIELDS[5:] if k not in ("threads",)}
            s["n"] = len(rows)
            s["threads"] = int(rows[0]["threads"])
            s["true_flip_by_target"] = {e: _mean([r for r in rows if r["target"] == e], "true_flip") for e in EMOTIONS
                                        if any(r["target"] == e for r in rows)}
            table.setdefault(m, {})[str(b)] = s
    return table


def verdicts(table, at=16):
    """The issue's bars, from the table."""
    def flip(m, b):
        return table.get(m, {}).get(str(b), {}).get("true_flip")
    smc = {m: flip(m, at) for m in table if (m.startswith("smc-") or m == "guided-smc") and flip(m, at) is not None}
    out = {}
    if smc:
        best = max(smc, key=smc.get)
        out["best_smc_at_%d" % at] = {"method": best, "true_flip": smc[best]}
        if flip("best-of-n", at) is not None:
            out["best_smc_minus_best_of_n"] = round(smc[best] - flip("best-of-n", at), 3)
        if flip("unguided", 1) is not None:
            out["best_smc_minus_unguided"] = round(smc[best] - flip("unguided", 1), 3)
    plain = flip("smc-difference-latent", at)
    if plain is not None and "guided-smc" in table:
        reach = [int(b) for b, s in table["guided-smc"].items() if s["true_flip"] is not None and s["true_flip"] >= plain]
        out["plain_smc_difference_latent_at_%d" % at] = plain
        out["guided_smc_smallest_budget_reaching_it"] = min(reach) if reach else None
        out["guided_smc_by_budget"] = {b: s["true_flip"] for b, s in sorted(table["guided-smc"].items(), key=lambda kv: int(kv[0]))}
    return out


def markdown(table, budgets, at=16) -> str:
    """Two tables: the true flip rate of every method at every budget, and every measure at budget ``at``."""
    bs = sorted(budgets)
    lines = ["| method | " + " | ".join(f"N = {b}" for b in bs) + " |", "|---|" + "---|" * len(bs)]
    for m, runs in table.items():
        cells = [f"{runs[str(b)]['true_flip']:.2f}" if str(b) in runs else "—" for b in bs]
        lines.append(f"| `{m}` | " + " | ".join(cells) + " |")
    lines += ["", f"| method (N = {at}; unguided: 1 sample) | true flip | judge flip | classifier p | unclear | "
              "L1 to the true counterfactual (expr.) | L1 outside the expression | realism | KID | UNet evals | "
              "decodes | scorer backward passes | s / edit |", "|---|" + "---|" * 12]
    for m, runs in table.items():
        s = runs.get(str(at)) or (runs.get("1") if m == "unguided" else None)
        if s:
            lines.append(f"| `{m}` | {s['true_flip']:.2f} | {s['judge_flip']:.2f} | {s['classifier_p']:.2f} | "
                         f"{s['unclear']:.2f} | {s['l1_expression']:.1f} | {s['outside_l1']:.1f} | {s['realism']:.2f} | "
                         f"{s['kid']:.3f} | {s['unet_evals']:.0f} | {s['decodes']:.0f} | {s['reward_grads']:.0f} | "
                         f"{s['seconds']:.1f} |")
    return "\n".join(lines) + "\n"


def plot(table, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.6))
    colours = {m: f"C{i}" for i, m in enumerate(METHODS)}  # one colour per method in both panels
    for m, runs in table.items():
        bs = sorted(runs, key=int)
        xs = [runs[k]["unet_evals"] for k in bs]
        ys = [runs[k]["true_flip"] for k in bs]
        style = dict(marker="o", color=colours[m], ls="--" if m in ("unguided", "best-of-n", "gradient-guidance") else "-")
        if m == "unguided":
            a.axhline(ys[0], color=colours[m], ls=":", label=f"unguided ({ys[0]:.2f})")
        else:
            a.plot(xs, ys, label=m, **style)
        b.plot([runs[k]["true_flip"] for k in bs], [runs[k]["outside_l1"] for k in bs], label=m, **style)
    a.set_xscale("log", base=2)
    a.set_xlabel("UNet evaluations per counterfactual (budget N x steps)")
    a.set_ylabel("true flip rate (ground truth)")
    a.set_ylim(0, 1)
    a.set_title("What each method buys with its UNet evaluations")
    a.legend(fontsize=8)
    b.set_xlabel("true flip rate")
    b.set_ylabel("L1 outside the expression region (lower keeps more identity)")
    b.set_title("Identity against flip rate (points: budgets 1 ... 32)")
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--faces", type=int, default=14)
    p.add_argument("--targets-per-face", type=int, default=2)
    p.add_argument("--budgets", type=int, nargs="+", default=[1, 4, 8, 16, 32])
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reference", type=int, default=100, help="held-out identities (x 7 expressions) for KID")
    p.add_argument("--csv", default=str(ROOT / "results" / "frontier_toy.csv"))
    p.add_argument("--out", default=str(ROOT / "results" / "frontier_toy.json"))
    p.add_argument("--figure", default=str(ROOT / "results" / "frontier_toy.png"))
    p.add_argument("--grid", default=str(ROOT / "results" / "frontier_toy_grid.png"))
    p.add_argument("--grid-budget", type=int, default=16)
    p.add_argument("--report-only", action="store_true", help="run nothing: summarise the CSV (JSON, figure, tables)")
    p.add_argument("--markdown", default=str(ROOT / "results" / "frontier_toy.md"), help="the README's tables")
    add_config_args(p, get_profile("toy").edit)  # the base each method changes: the toy preset by default
    a = p.parse_args()
    prof = get_profile("toy")
    base = config_from_args(a, prof.edit)
    pipe, judge, realism = EmotionEditPipeline.from_profile(prof), prof.load("judge"), Realism()
    xs, idents, names, rows = counterfactuals(a.faces, a.targets_per_face)
    ref_imgs, *_ = toy_faces(a.reference, HELDOUT_SEED + 2)  # other identities, every expression
    with torch.no_grad():
        ref = torch.cat([judge.features(b) for b in images_to_tensor(ref_imgs).split(256)]).cpu()
    path = Path(a.csv)
    done = []
    if path.exists():
        with path.open() as f:
            reader = csv.DictReader(f)
            done, header = list(reader), reader.fieldnames or []
        if header != FIELDS:
            raise SystemExit(f"{path} has columns {header}, this version writes {FIELDS}: use another --csv")
    have = {(r["method"], int(r["budget"]), int(r["cf"])) for r in done}
    todo = [(m, b) for b in sorted(a.budgets, key=lambda b: ORDER.index(b) if b in ORDER else 99) for m in a.methods
            if not (m == "unguided" and b != 1)] if not a.report_only else []
    from tqdm.auto import tqdm

    path.parent.mkdir(parents=True, exist_ok=True)
    grid = {}
    for m, b in tqdm(todo, desc="frontier", file=sys.stderr):
        need = [i for i in range(len(rows)) if (m, b, i) not in have]
        want_grid = b == a.grid_budget or (m == "unguided")
        if not need and not want_grid:
            continue
        sel = need if need else list(range(min(4, len(rows))))  # none missing: the first four, for the grid
        new, images = run_one(prof, pipe, judge, realism, ref, m, b, xs[sel], [idents[i] for i in sel],
                              [names[i] for i in sel], a.seed, base)
        if want_grid and all(i in sel for i in range(min(4, len(rows)))):
            grid[m] = {i: images[k] for k, i in enumerate(sel) if i < 4}
        if need:
            write_header = not path.exists()
            with path.open("a", newline="") as f:
                w = csv.DictWriter(f, FIELDS)
                if write_header:
                    w.writeheader()
                for i, r in zip(sel, new):
                    w.writerow({"method": m, "budget": b, "cf": i, "face": rows[i][0], "target": names[i], **r})
    all_rows = list(csv.DictReader(path.open()))
    table = summarise(all_rows, a.budgets)
    out = {"faces": a.faces, "targets_per_face": a.targets_per_face, "face_seed": HELDOUT_SEED,
           "settings": base.to_dict(), "methods": table, "bars": verdicts(table, a.grid_budget)}
    if a.figure:
        plot(table, a.figure)
    if a.markdown:
        Path(a.markdown).write_text(markdown(table, a.budgets, a.grid_budget))
    if a.grid and grid and min(len(g) for g in grid.values()) > 0:
        from emosmc.viz import image_grid

        ms = [m for m in METHODS if m in grid and len(grid[m]) >= 1]
        k = min(len(g) for g in grid.values())
        tiles, titles = [], []
        for i in range(k):
            tiles.append(xs[i:i + 1])
            titles.append(f"source\n→ {names[i]}")
            for m in ms:
                tiles.append(grid[m][i][None].cpu())
                v = prof.true_expressions(grid[m][i][None].cpu(), [idents[i]])[0]
                titles.append(f"{m}\ntrue: {v}")
        image_grid(torch.cat(tiles), titles, ncols=len(ms) + 1, scale=1.4).savefig(a.grid, dpi=90)
    emit(out, a.out)


if __name__ == "__main__":
    main()

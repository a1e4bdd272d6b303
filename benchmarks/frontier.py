"""Is SMC worth its compute? Every method of :mod:`emosmc.baselines` on the same toy counterfactuals at
budgets of N samples' worth of UNet evaluations, judged by the toy world's ground truth. Prints JSON.

    python benchmarks/frontier.py                                    # 14 held-out faces x 2 targets, N = 1..32
    python benchmarks/frontier.py --faces 2 --budgets 1 4 --methods unguided best-of-n guided-smc   # a quick look

The methods are :func:`emosmc.baselines.method_configs` and run through :func:`emosmc.ablation.run_ablation`
(notebook 05's runner), with the frontier's own measures as extra columns. Resumable: every counterfactual's
measures go to a CSV (``--csv``) as each (method, budget) batch is done; a run that stops picks up at the first
one it has not finished, and ``--faces`` may grow later (only the new counterfactuals are run). The JSON summary, the figure (true flip rate against UNet evaluations, one
line per method; identity against flip rate) and markdown tables are written from the whole CSV; a grid
of the first four counterfactuals by every method at ``--grid-budget`` from this invocation's runs (when
they were all in the CSV already, they are run again for the grid alone). Each counterfactual has its own
generator (keyed by its face and target, :func:`emosmc.profiles.row_generators`), so its edit is the same
whichever batch it ran in; KID is the mean of its batches' values.

Methods (``--methods``): each of :data:`emosmc.baselines.METHODS`, bare (it keeps nothing of the person but
what it does itself), ``+region`` (the detected expression region, its colours kept, the source pasted back
outside) and ``+region+identity`` (the identity term in the reward too); the JSON's ``pareto_front`` names the
methods no other beats on both true flip and PSNR to the true counterfactual at ``--grid-budget``.

Measures, per counterfactual: the true flip (the ground-truth rule,
:func:`emosmc.ground_truth.true_expression`), the judge's flip, the distance to the true
counterfactual in the expression region, identity (L1 outside the expression region, hair and skin
colour shift), MTCNN realism; per run: KID of the judge's features against held-out renders of other
identities, UNet evaluations, decodes and scorer backward passes per counterfactual, seconds per
counterfactual (state the thread count beside them), peak memory.
"""
import argparse
import csv
import os
import resource
import sys
from pathlib import Path

import numpy as np
import torch
from results_json import emit

from emosmc.ablation import FIELDS as ABLATION_FIELDS, config_key, read_rows, run_ablation
from emosmc.baselines import METHODS, method_configs, method_settings
from emosmc.cli import add_config_args, config_from_args
from emosmc.data import images_to_tensor
from emosmc.evaluation import rate
from emosmc.labels import EMOTIONS
from emosmc.metrics import Realism, kid
from emosmc.pipeline import EmotionEditPipeline
from emosmc.profiles import get_profile, row_generators
from emosmc.toy.assets import source_rows, toy_faces
from emosmc.toy.faces import HELDOUT_SEED

ROOT = Path(__file__).resolve().parent
# the frontier's own measures, beside run_ablation's (target_prob: the steering classifier's p, identity: the
# L1 outside the expression region)
COLUMNS = ["unclear", "judge_flip", "l1_expression", "hair_shift", "skin_shift", "kid", "reward_grads", "threads",
           "peak_mib", "psnr", "inner_skin_shift", "same_person", "counterfactual"]
ORDER = (16, 8, 4, 1, 32)  # the budget the bars are about first, so a cut-short run still answers them
# every method bare, with the detected region (and the colours kept), and with the identity term beside it
DEFAULT_METHODS = [m + v for m in METHODS if not m.endswith("-pixel") for v in ("", "+region", "+region+identity")]


def counterfactuals(faces: int, per_face: int, seed: int = HELDOUT_SEED):
    """Face i shows EMOTIONS[i % 7]; it is edited towards ``per_face`` of the six others, rotating with i
    so that the targets are covered evenly. Returns images, identities, target names, (face, target) rows."""
    imgs, labels, ids, who = toy_faces(faces, seed)
    x = images_to_tensor(imgs)[source_rows(faces)]
    rows = []
    for i in range(faces):
        others = [t for t in range(7) if t != i % 7]
        rows += [(i, others[(i + j) % 6]) for j in range(per_face)]
    return x[[i for i, _ in rows]], [ids[i] for i, _ in rows], [EMOTIONS[t] for _, t in rows], rows


def image_ids(rows) -> list:
    """The CSV's key of each counterfactual: its face and target, not its position (which ``--faces`` and
    ``--targets-per-face`` change), so that a run with other sizes never reads another counterfactual's row."""
    return [f"face{i}-{EMOTIONS[t]}" for i, t in rows]


def rekey_positions(path: Path, ids) -> None:
    """Rows of earlier versions are keyed by position; a position becomes its face-and-target key when the
    row's target is that counterfactual's (other rows are left as they are, and the report skips them)."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        fields, old = reader.fieldnames, list(reader)
    moved = 0
    for r in old:
        k = int(r["image"]) if r["image"].isdigit() else -1
        if 0 <= k < len(ids) and ids[k].endswith("-" + r["target"]):
            r["image"], moved = ids[k], moved + 1
    if moved:
        tmp = path.with_name(path.name + ".rekeying")
        with tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(old)
        os.replace(tmp, path)
        print(f"{path}: {moved} rows keyed by position now keyed by face and target", file=sys.stderr)


def peak_mib() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the process's peak so far (Linux: KiB)


def frontier_measures(judge, ref_feats, grid: dict):
    """run_ablation's ``measures``: KID of the batch against held-out renders, the ground truth's verdicts and
    distances, scorer backward passes, threads and memory; keeps the first four counterfactuals for the grid."""
    def measures(c, out, ev, idx):
        n = len(idx)
        with torch.no_grad():
            feats = judge.features(out.images).cpu()
        run_kid = kid(feats, ref_feats) if n >= 2 else float("nan")
        grid.setdefault(c["method"], {}).update(
            {i: out.images[k].cpu() for k, i in enumerate(idx) if i < 4})
        per = {k: [round(float(v), 4) for v in ev.extra[k]]
               for k in ("l1_expression", "hair_shift", "skin_shift", "psnr", "inner_skin_shift")}
        per.update({k: [int(v) for v in ev.extra[k]] for k in ("same_person", "counterfactual")})
        same = {"kid": run_kid, "reward_grads": out.smc.num_reward_grads / n, "threads": torch.get_num_threads(),
                "peak_mib": round(peak_mib(), 1)}
        return {"unclear": [int(v) for v in ev.unclear], "judge_flip": [int(v) for v in ev.judge_flip], **per,
                **{k: [v] * n for k, v in same.items()}}
    return measures


# the CSV of the frontier's first version, before it ran through run_ablation: converted in place once
OLD_FIELDS = ["method", "budget", "cf", "face", "target", "true_flip", "unclear", "judge_flip", "classifier_p",
              "l1_expression", "outside_l1", "hair_shift", "skin_shift", "realism", "kid", "unet_evals",
              "decodes", "reward_grads", "seconds", "threads", "peak_mib"]


def convert_old_csv(path: Path, base) -> None:
    """Rows of the first version (one column per measure, keyed by method, budget, cf) become run_ablation
    rows (keyed by the method's config and the counterfactual), so that a resumed run skips them."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != OLD_FIELDS:
            return
        old = list(reader)
    fields = ABLATION_FIELDS + COLUMNS
    tmp = path.with_name(path.name + ".converting")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in old:
            m, b = r["method"], int(r["budget"])
            c = {**method_settings(m, base, b).to_dict(), "method": f"{m}@{b}", "swept": "method"}
            w.writerow({"config": config_key(c), "swept": "method", "image": r["cf"], "target": r["target"],
                        "target_prob": r["classifier_p"], "realism": r["realism"], "judge_prob": "",
                        "seconds": r["seconds"], "unet_evals": round(float(r["unet_evals"])),
                        "decodes": round(float(r["decodes"])), "true_flip": r["true_flip"], "identity": r["outside_l1"],
                        **{k: r.get(k, "") for k in COLUMNS}})
    os.replace(tmp, path)
    print(f"{path}: {len(old)} rows of the first version converted to run_ablation's columns", file=sys.stderr)


def _mean(rows, key):
    v = [float(r[key]) for r in rows if r[key] not in ("", None) and float(r[key]) == float(r[key])]
    return round(sum(v) / len(v), 3) if v else None


# the table's names for run_ablation's columns
RENAMED = {"target_prob": "classifier_p", "identity": "outside_l1"}


def _se(rows, key):
    v = [float(r[key]) for r in rows if r[key] not in ("", None) and float(r[key]) == float(r[key])]
    if len(v) < 2:
        return None
    mu = sum(v) / len(v)
    return round((sum((x - mu) ** 2 for x in v) / (len(v) - 1) / len(v)) ** 0.5, 3)


def method_names(methods):
    """Every method of ``methods`` (names of :data:`METHODS`, optionally with ``+region`` / ``+identity``), in
    :data:`METHODS`' order, each bare method before its variants."""
    order = {m: i for i, m in enumerate(METHODS)}
    return sorted(dict.fromkeys(methods), key=lambda m: (order[m.split("+")[0]], m.count("+"), m))


def summarise(all_rows, budgets, methods=tuple(METHODS)):
    """Per method and budget: the mean of every measure, the true flip and counterfactual rates with their
    standard errors, the PSNR to the true counterfactual with its standard error, per target (``unguided``:
    its one sample, at budget 1, whatever the budgets)."""
    table = {}
    for m in method_names(methods):
        for b in ((1,) if m.split("+")[0] == "unguided" else budgets):
            rows = [r for r in all_rows if r.get("method") == f"{m}@{b}"]
            if not rows:
                continue
            keys = ["true_flip", "unclear", "judge_flip", "target_prob", "l1_expression", "identity", "hair_shift",
                    "skin_shift", "inner_skin_shift", "psnr", "same_person", "counterfactual", "realism", "kid",
                    "unet_evals", "decodes", "reward_grads", "seconds", "peak_mib"]
            s = {RENAMED.get(k, k): _mean(rows, k) for k in keys}
            for k in ("true_flip", "counterfactual", "same_person"):
                r_ = rate(r.get(k) if r.get(k) not in ("", None) else None for r in rows)
                s[f"{k}_se"] = round(r_["se"], 3) if r_["se"] is not None else None
            s["psnr_se"] = _se(rows, "psnr")
            s["n"] = len(rows)
            s["threads"] = int(float(rows[0]["threads"]))
            s["true_flip_by_target"] = {e: _mean([r for r in rows if r["target"] == e], "true_flip") for e in EMOTIONS
                                        if any(r["target"] == e for r in rows)}
            table.setdefault(m, {})[str(b)] = s
    return table


def verdicts(table, at=16):
    """The issue's bars, from the table."""
    def flip(m, b):
        return table.get(m, {}).get(str(b), {}).get("true_flip")
    smc = {m: flip(m, at) for m in table if (m.startswith("smc-") or m == "guided-smc") and "+" not in m
           and flip(m, at) is not None}
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


def pareto_front(table, at=16):
    """The methods at budget ``at`` (unguided: its one sample) that no other beats on both true flip and PSNR to
    the true counterfactual (higher is better on both), best flip first."""
    pts = {m: (runs.get(str(at)) or (runs.get("1") if m.split("+")[0] == "unguided" else None)) for m, runs in table.items()}
    pts = {m: (s["true_flip"], s["psnr"]) for m, s in pts.items() if s and s.get("psnr") is not None}
    front = [m for m, (f, q) in pts.items()
             if not any(f2 >= f and q2 >= q and (f2, q2) != (f, q) for m2, (f2, q2) in pts.items() if m2 != m)]
    return sorted(front, key=lambda m: -pts[m][0])


def markdown(table, budgets, at=16) -> str:
    """Two tables: the true flip rate of every method at every budget, and every measure at budget ``at``."""
    bs = sorted(budgets)
    lines = ["| method | " + " | ".join(f"N = {b}" for b in bs) + " |", "|---|" + "---|" * len(bs)]
    for m, runs in table.items():
        cells = [f"{runs[str(b)]['true_flip']:.2f} ± {runs[str(b)]['true_flip_se']:.2f}" if str(b) in runs else "—"
                 for b in bs]
        lines.append(f"| `{m}` | " + " | ".join(cells) + " |")
    lines += ["", f"| method (N = {at}; unguided: 1 sample) | true flip | judge flip | classifier p | unclear | "
              "L1 to the true counterfactual (expr.) | L1 outside the expression | realism | KID | UNet evals | "
              "decodes | scorer backward passes | s / edit |", "|---|" + "---|" * 12]
    for m, runs in table.items():
        s = runs.get(str(at)) or (runs.get("1") if m.split("+")[0] == "unguided" else None)
        if s:
            lines.append(f"| `{m}` | {s['true_flip']:.2f} ± {s['true_flip_se']:.2f} | {s['judge_flip']:.2f} | {s['classifier_p']:.2f} | "
                         f"{s['unclear']:.2f} | {s['l1_expression']:.1f} | {s['outside_l1']:.1f} | {s['realism']:.2f} | "
                         f"{s['kid']:.3f} | {s['unet_evals']:.0f} | {s['decodes']:.0f} | {s['reward_grads']:.0f} | "
                         f"{s['seconds']:.1f} |")
    front = pareto_front(table, at)
    lines += ["", f"| method (N = {at}; unguided: 1 sample) | true flip | PSNR to the true counterfactual (dB) | "
              "same person | counterfactual rate | on the Pareto front |", "|---|" + "---|" * 5]
    for m, runs in table.items():
        s = runs.get(str(at)) or (runs.get("1") if m.split("+")[0] == "unguided" else None)
        if s and s.get("psnr") is not None:
            def pm(k, places):  # a value with its standard error; "–" where it was not measured
                v, e = s.get(k), s.get(k + "_se")
                return "–" if v is None else f"{v:.{places}f}" + ("" if e is None else f" ± {e:.{places}f}")
            lines.append(f"| `{m}` | {pm('true_flip', 2)} | {pm('psnr', 1)} | {pm('same_person', 2)} | "
                         f"{pm('counterfactual', 2)} | {'yes' if m in front else ''} |")
    return "\n".join(lines) + "\n"


def plot(table, path, at=16):
    """Left: true flip against UNet evaluations, one line per method. Right: true flip against PSNR to the true
    counterfactual at budget ``at`` (unguided: one sample), standard errors on both axes; bare methods filled,
    ``+region`` open, ``+region+identity`` crossed; the Pareto front joined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(16, 5.6))
    colours = {m: f"C{i}" for i, m in enumerate(METHODS)}  # one colour per method, one marker per method
    markers = {m: "osD^vPXh"[i % 8] for i, m in enumerate(METHODS)}
    for m, runs in table.items():
        base, addons = m.split("+")[0], m.count("+")
        bs = sorted(runs, key=int)
        xs = [runs[k]["unet_evals"] for k in bs]
        ys = [runs[k]["true_flip"] for k in bs]
        style = dict(marker=markers[base], color=colours[base], markerfacecolor="none" if addons else colours[base],
                     ls=(":" if addons else ("--" if base in ("unguided", "best-of-n", "gradient-guidance") else "-")))
        if base == "unguided":
            a.axhline(ys[0], color=colours[base], ls=":" if not addons else (0, (1, 4)), label=f"{m} ({ys[0]:.2f})")
        elif len(bs) > 1 or not addons:
            a.plot(xs, ys, label=m, **style)
        s = runs.get(str(at)) or (runs.get("1") if base == "unguided" else None)
        if s and s.get("psnr") is not None:
            b.errorbar(s["psnr"], s["true_flip"], xerr=s["psnr_se"], yerr=s["true_flip_se"], fmt=markers[base],
                       color=colours[base], markerfacecolor="none" if addons else colours[base],
                       markersize=8 if addons else 6, capsize=2, label=m)
            if addons == 2:
                b.plot(s["psnr"], s["true_flip"], "x", color=colours[base], markersize=5)
    front = pareto_front(table, at)
    pts = [table[m].get(str(at)) or table[m].get("1") for m in front]
    if len(pts) > 1:
        order = sorted(range(len(pts)), key=lambda i: pts[i]["psnr"])
        b.plot([pts[i]["psnr"] for i in order], [pts[i]["true_flip"] for i in order], "k-", lw=0.8, alpha=0.5,
               label="Pareto front", zorder=0)
    budgets = {k for runs in table.values() for k in runs}
    if len(budgets - {"1"}) <= 1:  # one budget: the left panel shows what keeping the person leaves of the flips
        a.clear()
        names = [m for m in table if (table[m].get(str(at)) or table[m].get("1") or {}).get("counterfactual") is not None]
        pts = [table[m].get(str(at)) or table[m].get("1") for m in names]
        y = np.arange(len(names))[::-1]
        a.barh(y, [p["true_flip"] for p in pts], color="0.85", label="true flip")
        a.barh(y, [p["counterfactual"] for p in pts], xerr=[p["counterfactual_se"] or 0 for p in pts], height=0.5,
               color=[colours[m.split("+")[0]] for m in names], capsize=2, label="counterfactual (and the same person)")
        a.set_yticks(y, names, fontsize=7)
        a.set_xlim(0, 1.04)
        a.set_xlabel("rate over the counterfactuals (± one standard error)")
        a.set_title(f"Counterfactual rate against true flip at N = {at}")
        a.legend(fontsize=7, loc="lower right")
    else:
        a.set_xscale("log", base=2)
        a.set_xlabel("UNet evaluations per counterfactual (budget N x steps)")
        a.set_ylabel("true flip rate (ground truth)")
        a.set_ylim(0, 1.04)  # a rate of 1 drawn whole
        a.set_title("What each method buys with its UNet evaluations")
        a.legend(fontsize=7)
    b.set_xlabel("PSNR to the true counterfactual render(identity, target), dB")
    b.set_ylabel("true flip rate")
    b.set_ylim(0, 1.04)
    b.set_title(f"Flip against fidelity at N = {at} (open: +region; x: +region+identity)", fontsize=10)
    b.legend(fontsize=6, ncol=2, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--faces", type=int, default=14)
    p.add_argument("--targets-per-face", type=int, default=2)
    p.add_argument("--budgets", type=int, nargs="+", default=[1, 4, 8, 16, 32])
    p.add_argument("--methods", nargs="+", default=DEFAULT_METHODS,
                   help=f"methods of {list(METHODS)}, each optionally with +region, +region+identity or +identity")
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
    path = Path(a.csv)
    if path.exists():
        convert_old_csv(path, base)
    grid = {}
    xs, idents, names, rows = counterfactuals(a.faces, a.targets_per_face)
    ids = image_ids(rows)
    if path.exists():
        rekey_positions(path, ids)
    if not a.report_only:
        pipe, judge = EmotionEditPipeline.from_profile(prof), prof.load("judge")
        ref_imgs, *_ = toy_faces(a.reference, HELDOUT_SEED + 2)  # other identities, every expression
        with torch.no_grad():
            ref = torch.cat([judge.features(b) for b in images_to_tensor(ref_imgs).split(256)]).cpu()
        budgets = sorted(a.budgets, key=lambda b: ORDER.index(b) if b in ORDER else 99)
        configs = [c for b in budgets for c in method_configs(base, a.methods, (b,))]
        configs = list({config_key(c): c for c in configs}.values())  # unguided (one sample) once
        for m in a.methods:
            method_settings(m, base, 1)  # an unknown name fails here, before any run
        run_ablation(pipe, xs, ids, configs, names, path, seed=a.seed,
                     realism=Realism(), judge=judge, identities=idents, identity=prof.identity_measure(),
                     profile=prof, measures=frontier_measures(judge, ref, grid), columns=COLUMNS)
        if a.grid and a.grid_budget in a.budgets:  # the first four counterfactuals by every method, for the grid
            k = min(4, len(xs))
            for m in a.methods:
                one = m.split("+")[0] == "unguided"
                label = f"{m}@1" if one else f"{m}@{a.grid_budget}"
                if len(grid.get(label, {})) < k:  # all in the CSV already: run again for the grid alone
                    c = method_settings(m, base, 1 if one else a.grid_budget)
                    out = pipe(xs[:k], names[:k], c, generator=row_generators(a.seed, ids[:k]), progress=False)
                    grid[label] = {i: out.images[i].cpu() for i in range(k)}
            grid = {label.split("@")[0]: g for label, g in grid.items()
                    if label.startswith("unguided") or label.endswith(f"@{a.grid_budget}")}
        else:
            grid = {}
    wanted = {config_key(c) for c in method_configs(base, a.methods, tuple(a.budgets))}
    mine = set(ids)  # other base settings' rows, or other counterfactuals' (other sizes), are not these
    all_rows = [r for r in read_rows(path) if r["config"] in wanted and r["image"] in mine]
    table = summarise(all_rows, a.budgets, a.methods)
    out = {"faces": a.faces, "targets_per_face": a.targets_per_face, "face_seed": HELDOUT_SEED,
           "settings": base.to_dict(), "budget": a.grid_budget, "methods": table, "bars": verdicts(table, a.grid_budget),
           "pareto_front": pareto_front(table, a.grid_budget)}
    if a.figure:
        plot(table, a.figure, a.grid_budget)
    if a.markdown:
        Path(a.markdown).write_text(markdown(table, a.budgets, a.grid_budget))
    if a.grid and grid:
        draw_grid(prof, grid, xs, idents, names, a.grid)
    emit(out, a.out)


def draw_grid(prof, grid, xs, idents, names, path):
    from emosmc.viz import image_grid

    ms = [m for m in method_names(grid)]
    k = min(len(g) for g in grid.values())
    tiles, titles = [], []
    for i in range(k):
        tiles.append(xs[i:i + 1])
        titles.append(f"source\n→ {names[i]}")
        for m in ms:
            tiles.append(grid[m][i][None])
            titles.append(f"{m.replace('+', chr(10) + '+')}\ntrue: {prof.true_expressions(grid[m][i][None], [idents[i]])[0]}")
    image_grid(torch.cat(tiles), titles, ncols=len(ms) + 1, scale=1.4).savefig(path, dpi=90)


if __name__ == "__main__":
    main()

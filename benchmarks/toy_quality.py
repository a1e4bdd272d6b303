"""Quality of the toy world's edits, judged by its ground truth first. Prints JSON.

    python benchmarks/toy_quality.py                        # 30 held-out faces x 6 targets, the toy settings
    python benchmarks/toy_quality.py --faces 5 --samples 0  # quicker
    python benchmarks/toy_quality.py --out benchmarks/results/toy_quality.json --grid-dir benchmarks/results
        # grids: toy_quality_edits.png (edits with their true counterfactuals), toy_quality_reconstructions.png,
        # toy_quality_samples.png

Every face is a new identity (``BENCHMARK_SEED``, on which no model or setting was ever chosen; tune on
``TUNING_SEED`` with ``--face-seed``). The toy world knows
each counterfactual, ``render(identity, target)``, so an edit is judged by
:func:`emosmc.ground_truth.true_expression` (the nearest rendering of the same identity inside
the expression region), not by a classifier it may have fooled. Reported:

* the ground-truth rule's accuracy on clean renders and VAE reconstructions, and the classifier's
  and judge's accuracy on both;
* SMC edits: the true flip rate (overall and per target), how often the truth rule agrees with the plainest
  rule (:func:`emosmc.ground_truth.nearest_render`), the judge's flip rate and its agreement with the truth, the share of true flips among edits the guidance classifier is sure of
  (p >= 0.9), the distance to the true counterfactual, identity kept (outside-region L1, hair and
  skin colour shift);
* unguided img2img at the same strength and steps: keeps the source's true expression, flips;
* samples of the UNet from pure noise: the share that are toy faces (the toy renderer fitted to each,
  :mod:`emosmc.toy.face_fit`; calibrated by ``benchmarks/toy_face_fit.py``) and that show a clear
  expression by the ground truth with the fitted identity, with a grid to look at (MTCNN's and the
  judge's figures beside them);
* seconds per counterfactual.

``--ddim-eta ETA`` samples (steering, the unguided control and the samples from pure noise alike) with
diffusers' ``DDIMScheduler`` at that eta instead of the profile's DDPM scheduler: ``0`` is deterministic, ``1``
is DDPM's step (:func:`experiments.ddim_eta.ddim_at_eta`, in ``benchmarks/experiments/``).
"""
import argparse
import sys
import time
from pathlib import Path

import torch
from results_json import emit

from emosmc.cli import add_config_args, config_from_args
from emosmc.evaluation import evaluate, rate, verdict_text
from emosmc.ground_truth import identity_kept, nearest_render, true_expression
from emosmc.metrics import accuracy, psnr
from emosmc.pipeline import EmotionEditPipeline
from emosmc.profiles import get_profile, row_generators
from emosmc.toy.assets import source_rows, toy_faces
from emosmc.toy.faces import BENCHMARK_SEED, TUNING_SEED, render
from emosmc.labels import EMOTIONS
from emosmc.data import images_to_tensor
from experiments.ddim_eta import ddim_at_eta


def _r(v, n=3):
    return round(float(v), n)


def _nanmean(t):
    t = t[~torch.isnan(t)]
    return _r(t.mean()) if len(t) else None


@torch.no_grad()
def unet_ms_per_latent(pipe, batch: int, repeats: int = 20) -> float:
    """Milliseconds per latent of the UNet alone at the steering's batch (the particles of one edit), to
    read the seconds per counterfactual against: the same CPU runs at different speeds on different days."""
    c, s = pipe.unet.config.in_channels, pipe.unet.config.sample_size
    z = torch.randn(batch, c, s, s, generator=torch.Generator().manual_seed(0))
    t = torch.tensor(500)
    for _ in range(3):
        pipe.unet(z, t)
    t0 = time.perf_counter()
    for _ in range(repeats):
        pipe.unet(z, t)
    return round((time.perf_counter() - t0) / repeats / batch * 1000, 2)


@torch.no_grad()
def unet_samples(pipe, judge, n: int, steps: int, seed: int, clean: torch.Tensor):
    """``n`` samples of the UNet from pure noise (the pipeline's scheduler, ``steps`` steps), decoded. A sample
    counts as a face when the toy world explains it (:mod:`emosmc.toy.face_fit`: the fitted render is as close
    as for VAE reconstructions of real toy faces, with a skin tone for skin); its expression is clear when the
    ground truth, given the fitted identity, is not "unclear". Beside them, the earlier proxies: MTCNN's
    face probability >= 0.9 (trained on photographs, it passes only part of even ``clean`` held-out
    renders) and the judge's top probability >= 0.9."""
    from emosmc.metrics import Realism
    from emosmc.toy.face_fit import fit_faces

    imgs = pipe.sample(n, steps, torch.Generator().manual_seed(seed))
    fits = fit_faces(imgs, seed=seed)
    gt = true_expression(imgs, [f.identity for f in fits])
    realism = Realism()
    m, m_clean = realism(imgs), realism(clean[:n])
    top, top_clean = judge(imgs).max(-1).values.cpu(), judge(clean[:n]).max(-1).values.cpu()
    face, face_clean = (m >= 0.9).float().mean(), (m_clean >= 0.9).float().mean()
    verdicts = [("face" if f.is_face else "NOT a face") + f"\n{name}" for f, name in zip(fits, gt.names)]
    return imgs, verdicts, {
        "n": n, "steps": steps, "face_rate_toy_fit": _r(sum(f.is_face for f in fits) / n),
        "clear_expression_rate_ground_truth": _r((gt.labels >= 0).float().mean()),
        "face_rate_mtcnn_ge_0.9": _r(face), "clean_renders_face_rate_mtcnn": _r(face_clean),
        "mtcnn_mean": _r(m.mean()), "clear_expression_rate_judge_ge_0.9": _r((top >= 0.9).float().mean()),
        "clean_renders_clear_expression_rate_judge": _r((top_clean >= 0.9).float().mean())}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--faces", type=int, default=30)
    p.add_argument("--heldout", type=int, default=100, help="identities for the accuracy / PSNR figures")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--face-seed", type=int, default=BENCHMARK_SEED,
                   help=f"identities to use; tune on TUNING_SEED = {TUNING_SEED}, never on this one")
    p.add_argument("--assets", help="toy assets folder to measure (default: the bundled ones)")
    p.add_argument("--samples", type=int, default=64, help="UNet samples from pure noise (0: skip)")
    p.add_argument("--out", help="also write the JSON here")
    p.add_argument("--grid-dir", help="write toy_quality_edits.png and toy_quality_samples.png here")
    p.add_argument("--ddim-eta", type=float, help="sample with DDIM at this eta (0: deterministic) instead of DDPM")
    add_config_args(p, get_profile("toy").edit)  # every edit setting, the toy preset's by default
    a = p.parse_args()
    torch.manual_seed(a.seed)
    prof = get_profile("toy", a.assets)
    config = config_from_args(a, prof.edit)
    pipe = EmotionEditPipeline.from_profile(prof)
    if a.ddim_eta is not None:
        pipe.scheduler = ddim_at_eta(pipe.scheduler, a.ddim_eta)
    judge = prof.load("judge")
    out = {"settings": config.to_dict(), "ddim_eta": a.ddim_eta, "faces": a.faces, "face_seed": a.face_seed,
           "threads": torch.get_num_threads()}

    # 1. the rule and the classifiers on clean renders and VAE reconstructions
    imgs, labels, ids, who = toy_faces(max(a.heldout, a.faces), a.face_seed)
    x = images_to_tensor(imgs)
    idents_all = [ids[int(i)] for i in who]
    with torch.no_grad():
        rec = torch.cat([pipe.decode(pipe.encode(b)) for b in x.split(256)])
    gt_clean, gt_rec = true_expression(x, idents_all), true_expression(rec, idents_all)
    out["vae_psnr_db"] = _r(psnr(rec, x).mean(), 2)
    out["truth_rule_accuracy"] = {"clean": _r(gt_clean.is_(labels).float().mean()),
                                  "reconstructions": _r(gt_rec.is_(labels).float().mean())}
    keep_rec = identity_kept(x, rec, idents_all)
    out["vae_reconstruction_identity"] = {k: _nanmean(v) for k, v in keep_rec.items()}  # the floor of any edit
    for name, model in (("classifier", pipe.classifier), ("judge", judge)):
        out[f"{name}_accuracy"] = {"clean": _r(accuracy(model, x, labels)),
                                   "reconstructions": _r(accuracy(model, rec, labels))}
    print("accuracies done", file=sys.stderr, flush=True)

    # 2. edits: face i shown with expression EMOTIONS[i % 7], edited towards the 6 others
    F = a.faces
    src_idx = source_rows(F)
    src, src_lab = x[src_idx], labels[src_idx]
    rows = [(i, t) for i in range(F) for t in range(7) if t != int(src_lab[i])]
    xs = src[[i for i, _ in rows]]
    tgt = torch.tensor([t for _, t in rows])
    names = [EMOTIONS[t] for t in tgt]
    idents = [ids[i] for i, _ in rows]
    src_rows = src_lab[[i for i, _ in rows]]
    keys = [i * 7 + t for i, t in rows]  # one generator per edit: its result does not depend on the batch
    t0 = time.time()
    res = pipe(xs, names, config, generator=row_generators(a.seed, keys), progress=True)
    smc_s = time.time() - t0
    t0 = time.time()
    plain = pipe.img2img(xs, config.num_inference_steps, config.noise_strength, 1,
                         generator=row_generators(a.seed, keys))[:, 0]
    plain_s = time.time() - t0
    ev = evaluate(xs, res.images, tgt, prof, identities=idents, judge=judge, classifier_probs=res.target_probs,
                  seconds=smc_s)
    ev_plain = evaluate(xs, plain, tgt, prof, identities=idents, judge=judge, seconds=plain_s)
    j_smc, j_plain = ev.judge_argmax, ev_plain.judge_argmax
    true_flip, judge_flip = ev.true_flip.bool(), ev.judge_flip
    sure = res.target_probs >= 0.9
    keep_smc, keep_plain = ({"outside_l1": e.identity, "hair_shift": e.extra["hair_shift"],
                             "skin_shift": e.extra["skin_shift"], "inner_skin_shift": e.extra["inner_skin_shift"]}
                            for e in (ev, ev_plain))
    same, cfr = ev.extra["same_person"], ev.extra["counterfactual"]
    vae_keep = out["vae_reconstruction_identity"]
    cf, cf_plain = ({k: e.extra[k] for k in ("l1", "l1_expression", "psnr")} for e in (ev, ev_plain))
    plain_rule = nearest_render(res.images, idents)
    out["steering"] = {
        "counterfactuals": len(rows),
        "counterfactuals_by_target": {EMOTIONS[t]: int((tgt == t).sum()) for t in range(7)},
        "truth_rule_agrees_with_nearest_render": _r((plain_rule == ev.true_labels).float().mean()),
        "smc_true_flip_rate": _r(true_flip.float().mean()),
        "smc_true_flip_rate_se": _r(rate(true_flip.float().tolist())["se"]),
        # a counterfactual: the target truly shown *and* the same person (emosmc.ground_truth.same_person)
        "smc_counterfactual_rate": _r(cfr.mean()),
        "smc_counterfactual_rate_se": _r(rate(cfr.tolist())["se"]),
        "smc_counterfactual_rate_by_target": {EMOTIONS[t]: _r(cfr[tgt == t].mean()) for t in range(7)},
        "smc_same_person_rate": _r(same.mean()),
        "smc_same_person_rate_se": _r(rate(same.tolist())["se"]),
        "unguided_same_person_rate": _r(ev_plain.extra["same_person"].mean()),
        "psnr_to_true_counterfactual_se": _r(cf["psnr"].std() / len(rows) ** 0.5, 2),
        "fidelity_over_vae": {k: _r(_nanmean(keep_smc[k]) / vae_keep[k], 2)
                              for k in ("outside_l1", "hair_shift", "skin_shift", "inner_skin_shift")},
        "smc_true_flip_rate_by_target": {EMOTIONS[t]: _r(true_flip[tgt == t].float().mean()) for t in range(7)},
        "smc_true_expression_unclear": _r(ev.unclear.mean()),
        "smc_judge_flip_rate": _r(judge_flip.float().mean()),
        "smc_judge_flip_rate_by_target": {EMOTIONS[t]: _r(judge_flip[tgt == t].float().mean()) for t in range(7)},
        "judge_agrees_with_truth_on_flip": _r((judge_flip == true_flip).float().mean()),
        "classifier_sure_share": _r(sure.float().mean()),
        "classifier_sure_count": int(sure.sum()),
        "true_flip_rate_when_classifier_sure": _r(true_flip[sure].float().mean()) if sure.any() else None,
        "smc_classifier_target_prob": _r(res.target_probs.mean()),
        "unguided_true_flip_rate": _r(ev_plain.true_flip.mean()),
        "unguided_keeps_source_true_expression": _r((ev_plain.true_labels == src_rows).float().mean()),
        "unguided_judge_keeps_source_expression": _r((j_plain == src_rows).float().mean()),
        "distance_to_true_counterfactual": {
            "smc": {k: _r(v.mean(), 2) for k, v in cf.items()},
            "unguided": {k: _r(v.mean(), 2) for k, v in cf_plain.items()}},
        "identity": {
            "smc": {k: _nanmean(v) for k, v in keep_smc.items()},
            "unguided": {k: _nanmean(v) for k, v in keep_plain.items()},
            "smc_over_unguided_outside_l1": _r(keep_smc["outside_l1"].mean() / keep_plain["outside_l1"].mean())},
        "seconds_per_counterfactual_smc": round(ev.seconds, 3),
        "seconds_per_counterfactual_unguided": round(ev_plain.seconds, 3),
        # the machine's speed varies between sessions: the work per edit, and the UNet's own speed in this run
        "unet_latents_per_counterfactual": res.nfe["unet"] // len(rows),
        "unet_ms_per_latent": unet_ms_per_latent(pipe, config.num_particles),
    }
    print("steering done", file=sys.stderr, flush=True)
    if a.samples:
        clean = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(a.seed))]
        samples, sample_verdicts, out["unet_samples"] = unet_samples(pipe, judge, a.samples,
                                                                     config.num_inference_steps, a.seed, clean)
    if a.grid_dir:
        import matplotlib

        matplotlib.use("Agg")
        from emosmc.viz import image_grid

        d = Path(a.grid_dir)
        d.mkdir(parents=True, exist_ok=True)
        k = min(len(rows), 36)  # the first 6 faces: source and its 6 edits, then the 6 true counterfactuals
        tiles, titles = [], []
        for r in range(0, k, 6):
            tiles.append(xs[r:r + 1])
            titles.append(f"source\n({EMOTIONS[int(src_rows[r])]})")
            for j in range(r, r + 6):
                tiles.append(res.images[j:j + 1].cpu())
                verdict = verdict_text(ev.true_expression[j], names[j], float(same[j])).replace(" · ", "\n")
                titles.append(f"→ {names[j]}\n{verdict}\njudge: {EMOTIONS[int(j_smc[j])]}")
            tiles.append(torch.ones_like(xs[r:r + 1]))
            titles.append("the true\ncounterfactuals:")
            for j in range(r, r + 6):
                tiles.append(images_to_tensor(render(idents[j], names[j])[None]))
                titles.append(f"render(identity,\n{names[j]})")
        image_grid(torch.cat(tiles), titles, ncols=7, scale=1.6).savefig(d / "toy_quality_edits.png", dpi=100)
        n_show = 4  # clean renders over their VAE reconstructions, every expression
        tiles = torch.cat([torch.cat([x[7 * i:7 * i + 7], rec[7 * i:7 * i + 7]]) for i in range(n_show)])
        titles = [f"{'clean' if r == 0 else 'VAE'}: {EMOTIONS[int(labels[7 * i + c])]}\ntrue: "
                  f"{(gt_clean if r == 0 else gt_rec).names[7 * i + c]}" for i in range(n_show) for r in range(2)
                  for c in range(7)]
        image_grid(tiles, titles, ncols=7, scale=1.5).savefig(d / "toy_quality_reconstructions.png", dpi=90)
        if a.samples:
            image_grid(samples[:64], sample_verdicts[:64], ncols=8, scale=1.2).savefig(d / "toy_quality_samples.png",
                                                                                   dpi=80)
    emit(out, a.out)


if __name__ == "__main__":
    main()

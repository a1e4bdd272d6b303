"""Are the UNet's samples from pure noise toy faces? The toy world's own test, calibrated. Prints JSON.

    python benchmarks/toy_face_fit.py --out benchmarks/results/toy_face_fit.json --grid benchmarks/results/toy_face_fit.png

:func:`emosmc.toy.face_fit.fit_face` fits the toy renderer to an image (identity, colours, expression);
an image is a face when the fit is as close as it is for VAE reconstructions of real toy faces and its
skin is a skin tone. For each set of images this reports the share of faces, the residual and skin
distance (median and maximum), and the share whose expression the ground truth
(:func:`emosmc.ground_truth.true_expression`, with the fitted identity) calls clear:

* ``calibration``: clean renders and VAE reconstructions of 64 faces of seed 20 000, on which the
  thresholds were set (so their pass rate is 1 by construction);
* ``check``: the same on the benchmark's own 64 faces (seed 10 000), which the thresholds never saw;
* ``not_faces`` in each set: 16 of its reconstructions turned upside down, and cut into 8 x 8-pixel tiles
  shuffled at random -- what the test should reject;
* ``unet_samples``: 64 samples of the UNet from pure noise (the toy edit's 150 DDPM steps, seed 0, as in
  ``toy_quality.py``), with the expressions the ground truth sees in them, and the face rate again with
  the fit's search seeded otherwise (how much the verdicts depend on the search).

About 18 minutes on one CPU thread with the other core busy (about 2 s per fit).
"""
import argparse
import json
import time
from collections import Counter

import numpy as np
import torch
from results_json import emit

from emosmc.data import images_to_tensor
from emosmc.ground_truth import true_expression
from emosmc.labels import EMOTIONS
from emosmc.pipeline import EmotionEditPipeline
from emosmc.profiles import get_profile
from emosmc.toy.assets import source_rows, toy_faces
from emosmc.toy.face_fit import REGION_MAX, RESIDUAL_MAX, SKIN_MAX, fit_faces

CALIBRATION_SEED = 20_000  # also where the ground-truth rule was chosen; no model saw these faces


def _r(v, n=3):
    return round(float(v), n)


def summarise(images, fits, truth=None):
    res = np.array([f.residual for f in fits])
    reg = np.array([f.region_residual for f in fits])
    skin = np.array([f.skin_distance for f in fits])
    gt = true_expression(images, [f.identity for f in fits])
    clear = gt.labels >= 0
    out = {"n": len(fits), "face_rate": _r(np.mean([f.is_face for f in fits])),
           "residual_median": _r(np.median(res), 2), "residual_max": _r(res.max(), 2),
           "region_residual_median": _r(np.median(reg), 2), "region_residual_max": _r(reg.max(), 2),
           "skin_distance_median": _r(np.median(skin)), "skin_distance_max": _r(skin.max()),
           "clear_expression_rate": _r(clear.float().mean())}
    if truth is not None:
        out["true_expression_right_when_clear"] = _r((gt.labels == truth)[clear].float().mean()) if clear.any() else None
    return out, gt


def scramble(images, generator):
    """Cut each image into 8 x 8 tiles and shuffle them."""
    B, C, H, W = images.shape
    t = images.unfold(2, 8, 8).unfold(3, 8, 8).reshape(B, C, -1, 8, 8)
    t = t[:, :, torch.randperm(t.shape[2], generator=generator)]
    n = H // 8
    return t.reshape(B, C, n, n, 8, 8).permute(0, 1, 2, 4, 3, 5).reshape(B, C, H, W)


def calibrate(a):
    """The thresholds of :mod:`emosmc.toy.face_fit` from VAE reconstructions of ``CALIBRATION_SEED`` faces."""
    pipe = EmotionEditPipeline.from_profile(get_profile("toy", a.assets))
    ims, *_ = toy_faces(a.faces, CALIBRATION_SEED)
    rec = pipe.decode(pipe.encode(images_to_tensor(ims[source_rows(a.faces).numpy()])))
    fits = fit_faces(rec, seed=a.seed, progress=True)
    res, reg = max(f.residual for f in fits), max(f.region_residual for f in fits)
    out = {"calibration_seed": CALIBRATION_SEED, "faces": a.faces, "reconstructions_residual_max": _r(res, 2),
           "reconstructions_region_residual_max": _r(reg, 2), "RESIDUAL_MAX": round(1.1 * res, 1),
           "REGION_MAX": round(1.1 * reg, 1), "skin_distance_max": _r(max(f.skin_distance for f in fits))}
    emit(out, a.out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--faces", type=int, default=64, help="faces per set, and UNet samples")
    p.add_argument("--assets", help="toy assets folder (default: the bundled ones)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="also write the JSON here")
    p.add_argument("--grid", help="draw the UNet samples with their verdicts (PNG) here")
    p.add_argument("--calibrate", action="store_true",
                   help="only fit the calibration set's reconstructions and print the thresholds they give "
                        "(the largest residuals plus a tenth) for emosmc.toy.face_fit")
    a = p.parse_args()
    if a.calibrate:
        return calibrate(a)
    torch.manual_seed(a.seed)
    t0 = time.time()
    pipe = EmotionEditPipeline.from_profile(get_profile("toy", a.assets))
    out = {"faces": a.faces, "thresholds": {"residual_max": RESIDUAL_MAX, "region_residual_max": REGION_MAX,
                                           "skin_distance_max": SKIN_MAX},
           "threads": torch.get_num_threads()}
    rows = source_rows(a.faces)
    for name, seed in (("calibration", CALIBRATION_SEED), ("check", 10_000)):
        ims, labels, _, _ = toy_faces(a.faces, seed)
        x = images_to_tensor(ims[rows.numpy()])
        rec = pipe.decode(pipe.encode(x))
        out[name] = {k: summarise(v, fit_faces(v, seed=a.seed, progress=True), labels[rows])[0]
                     for k, v in (("clean", x), ("reconstructions", rec))}
        g = torch.Generator().manual_seed(a.seed)
        bad = {"upside_down": rec.flip(-2)[:16], "shuffled_tiles": scramble(rec[:16], g)}
        out[name]["not_faces"] = {k: summarise(v, fit_faces(v, seed=a.seed, progress=True))[0] for k, v in bad.items()}
        print(name, json.dumps(out[name]), flush=True)
    samples = pipe.sample(a.faces, 150, torch.Generator().manual_seed(a.seed))
    fits = fit_faces(samples, seed=a.seed, progress=True)
    out["unet_samples"], gt = summarise(samples, fits)
    out["unet_samples"]["true_expressions"] = dict(Counter(gt.names).most_common())
    other = fit_faces(samples, seed=a.seed + 1, progress=True)
    out["unet_samples"]["face_rate_fit_seed_plus_1"] = _r(np.mean([f.is_face for f in other]))
    out["unet_samples"]["skin_distances_of_rejected"] = sorted(_r(f.skin_distance) for f in fits if not f.is_face)
    out["seconds"] = round(time.time() - t0)
    if a.grid:
        import matplotlib

        matplotlib.use("Agg")
        from emosmc.viz import image_grid

        titles = [f"{'face' if f.is_face else 'NOT a face'}\nr {f.residual:.1f}/{f.region_residual:.1f} "
                  f"skin {f.skin_distance:.2f}\n{n}"
                  for f, n in zip(fits, gt.names)]
        image_grid(samples, titles, ncols=8, scale=1.3).savefig(a.grid, dpi=80)
    emit(out, a.out)


if __name__ == "__main__":
    main()

"""Where the toy edits lose the source's expression: the noise, or the UNet? Prints JSON.

    python benchmarks/toy_denoiser.py                       # 30 held-out faces, 8 noise draws each
    python benchmarks/toy_denoiser.py --assets <folder> --out benchmarks/results/toy_denoiser.json

Unguided img2img at the toy strength keeps the source's true expression on only about half of the
faces. Either the noise has erased it (then no model could keep it, and the strength is too high),
or the UNet fails to read what the noise left. The toy world tells the two apart, because it knows
the seven renderings of each identity:

* **information left** -- :func:`experiments.expression_posterior.expression_posterior`: the exact posterior over
  the identity's seven expressions given the noisy latent ``z_t = sqrt(abar_t) z0 + sqrt(1 - abar_t) eps``
  (uniform prior, the seven VAE latents as the only candidates): ``p(source | z_t)``. It is what an
  ideal denoiser that knew the identity (and the exact renderings) could recover. Also given with every
  face's seven expressions as candidates (the identity unknown too), and with a richer prior: the
  identity's geometry (face shape, eye size and spacing) jittered by up to a quarter of each range
  of :data:`emosmc.toy.faces.GEOMETRY` (8 variants, the true one among them), each with the seven
  expressions at six intensities over :data:`emosmc.toy.faces.INTENSITY_RANGE` (336 candidates; the source's own latent is not one).
* **one-step estimates** of ``z0`` from the same ``z_t`` (the "x0" a DDPM step is built on), decoded
  and judged by :func:`emosmc.ground_truth.true_expression` (keeps / unclear), with their squared
  error in latent space inside and outside the expression region: the UNet's, and the ideal one, the
  posterior mean over the identity's seven latents (as blurred a blend as the UNet's may be), and
  the rich prior's posterior mean.
* **unguided img2img** at the toy strength with 50, 150 (the toy setting) and 500 steps: whether the
  sampler's step count matters (diffusers' img2img rule starts them at slightly different timesteps,
  given in the JSON).

The edit's first timestep (the toy strength's) is always among the noise levels.
"""
import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from results_json import emit
import torch.nn.functional as F

from emosmc.data import images_to_tensor
from emosmc.diffusion import img2img_timesteps, predict_x0
from emosmc.ground_truth import expression_renders, true_expression
from emosmc.labels import EMOTIONS
from emosmc.pipeline import EmotionEditPipeline
from emosmc.profiles import get_profile
from emosmc.toy.assets import source_rows, toy_faces
from emosmc.toy.faces import GEOMETRY, INTENSITY_RANGE, TUNING_SEED, face_regions
from experiments.expression_posterior import expression_posterior


def _r(v, n=3):
    return round(float(v), n)


def rich_candidates(pipe, identities, variants: int = 8, spread: float = 0.25, seed: int = 0):
    """Each identity's geometry jittered (``variants``, the true one first) x the seven expressions x six
    intensities, VAE-encoded: ``(faces, K, C, h, w)`` latents and ``(faces, K)`` expression indices."""
    rng = np.random.default_rng(seed)
    levels = np.linspace(*INTENSITY_RANGE, 6)
    zs, cls = [], []
    for ident in identities:
        forms = [ident] + [dataclasses.replace(ident, **{
            k: float(np.clip(getattr(ident, k) + rng.uniform(-spread, spread) * (hi - lo), lo, hi))
            for k, (lo, hi) in GEOMETRY.items()}) for _ in range(variants - 1)]
        imgs = torch.cat([expression_renders(f, 64, levels).flatten(0, 1) for f in forms])  # form, expression, level
        zs.append(torch.cat([pipe.encode(b) for b in imgs.split(256)]))
        cls.append(torch.arange(len(EMOTIONS)).repeat_interleave(len(levels)).repeat(variants))
    return torch.stack(zs), torch.stack(cls)


@torch.no_grad()
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--faces", type=int, default=30)
    p.add_argument("--draws", type=int, default=8, help="noise draws per face and level")
    p.add_argument("--face-seed", type=int, default=TUNING_SEED)
    p.add_argument("--timesteps", type=int, nargs="*", default=[100, 200, 300])
    p.add_argument("--sampler-steps", type=int, nargs="*", default=[50, 150, 500])
    p.add_argument("--assets", help="toy assets folder (default: the bundled ones)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rich-variants", type=int, default=8, help="geometry variants per identity in the rich prior")
    p.add_argument("--out", help="also write the JSON here")
    p.add_argument("--plot", help="also draw the figure (PNG) here")
    p.add_argument("--from-json", help="measure nothing: draw --plot from this earlier JSON")
    a = p.parse_args()
    if a.from_json:
        return plot(json.loads(Path(a.from_json).read_text()), a.plot)
    pipe = EmotionEditPipeline.from_profile(get_profile("toy", a.assets))
    sch = pipe.scheduler
    preset = get_profile("toy").edit
    strength = preset.noise_strength
    t_edit = int(img2img_timesteps(sch, preset.num_inference_steps, strength)[0])

    imgs, labels, ids, _ = toy_faces(max(100, a.faces), a.face_seed)  # the faces (and intensities) of toy_quality.py
    x = images_to_tensor(imgs[: a.faces * 7])
    z_flat = torch.cat([pipe.encode(b) for b in x.split(256)])
    z_all = z_flat.view(a.faces, 7, *z_flat.shape[1:])
    pick = source_rows(a.faces)  # face i shows expression i % 7, as in toy_quality.py
    src_expr, src, z0 = labels[pick], x[pick], z_flat[pick]
    size = z0.shape[-1]
    region = torch.stack([torch.from_numpy(face_regions(ids[i], x.shape[-1])["expression"]).float()
                          for i in range(a.faces)])
    region = (F.adaptive_avg_pool2d(region[:, None], size) > 0.25).float()  # (F, 1, s, s) latent pixels
    z_rich, cls_rich = rich_candidates(pipe, ids[: a.faces], a.rich_variants, seed=a.seed)
    ab = sch.alphas_cumprod
    g = torch.Generator().manual_seed(a.seed)
    rep = lambda v: v.repeat_interleave(a.draws, 0)
    z_rich, rich_is_source = rep(z_rich), rep(cls_rich) == rep(src_expr)[:, None]  # one row per draw
    who = [ids[i] for i in range(a.faces) for _ in range(a.draws)]
    out = {"faces": a.faces, "draws": a.draws, "face_seed": a.face_seed, "toy_strength": strength,
           "toy_first_timestep": t_edit, "threads": torch.get_num_threads(), "by_timestep": {}}
    for t in sorted(set(a.timesteps + [t_edit])):
        abar = ab[t]
        zs = rep(z0)
        zt = abar.sqrt() * zs + (1 - abar).sqrt() * torch.randn(zs.shape, generator=g)
        rows = torch.arange(len(zt))
        post = expression_posterior(zt, rep(z_all), abar)  # (B, 7): the identity known
        p_src = post[rows, rep(src_expr)]
        # the identity unknown too: every face's seven expressions are candidates
        p_any = expression_posterior(zt, z_flat, abar)[rows, rep(pick)]
        ideal = (post[:, :, None, None, None] * rep(z_all)).sum(1)  # the ideal one-step estimate (a posterior mean)
        post_rich = expression_posterior(zt, z_rich, abar)  # (B, K): the rich prior
        p_rich = (post_rich * rich_is_source).sum(1)
        ideal_rich = (post_rich[:, :, None, None, None] * z_rich).sum(1)
        x0 = predict_x0(sch, pipe.unet(zt, t).sample, zt, t)
        m = rep(region)
        row = {"abar": _r(abar), "information_left_mean_p_source": _r(p_src.mean()),
               "information_left_share_p_gt_0.5": _r((p_src > 0.5).float().mean()),
               "information_left_identity_unknown_mean_p_source": _r(p_any.mean()),
               "information_left_rich_prior_mean_p_source": _r(p_rich.mean())}
        for name, est in (("ideal_x0", ideal), ("rich_ideal_x0", ideal_rich), ("unet_x0", x0)):
            truth = true_expression(pipe.decode(est), who)
            se = ((est - zs) ** 2).mean(1, keepdim=True)
            row.update({f"{name}_keeps_source": _r(truth.is_(rep(src_expr)).float().mean()),
                        f"{name}_unclear": _r((truth.labels < 0).float().mean()),
                        f"{name}_mse_expression_region": _r((se * m).sum() / m.sum(), 4),
                        f"{name}_mse_elsewhere": _r((se * (1 - m)).sum() / (1 - m).sum(), 4)})
        out["by_timestep"][str(t)] = row
        print(t, out["by_timestep"][str(t)], flush=True)
    out["unguided_img2img_keeps_source"], out["unguided_img2img_first_timestep"] = {}, {}
    for n in a.sampler_steps:
        out["unguided_img2img_first_timestep"][str(n)] = int(img2img_timesteps(sch, n, strength)[0])
        imgs_out = pipe.img2img(src, n, strength, a.draws, generator=torch.Generator().manual_seed(a.seed)).flatten(0, 1)
        out["unguided_img2img_keeps_source"][str(n)] = _r(true_expression(imgs_out, who).is_(rep(src_expr)).float().mean())
    emit(out, a.out)
    if a.plot:
        plot(out, a.plot)


def plot(out: dict, path: str):
    """Information left and what the UNet keeps, against the noise level; the edit's first timestep marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ts = sorted(int(t) for t in out["by_timestep"])
    row = lambda k: [out["by_timestep"][str(t)][k] for t in ts]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(ts, row("information_left_mean_p_source"), "o-", label="information left: exact p(source | z_t)")
    if "ideal_x0_keeps_source" in out["by_timestep"][str(ts[0])]:
        ax.plot(ts, row("ideal_x0_keeps_source"), "^--", label="ideal one-step x0 (knows the identity) keeps the source")
    if "rich_ideal_x0_keeps_source" in out["by_timestep"][str(ts[0])]:
        ax.plot(ts, row("rich_ideal_x0_keeps_source"), "v--",
                label="ideal one-step x0, 8 geometries x 6 intensities, keeps the source")
    ax.plot(ts, row("unet_x0_keeps_source"), "s-", label="UNet's one-step x0 keeps the source (ground truth)")
    starts = out.get("unguided_img2img_first_timestep", {})
    for n, v in out["unguided_img2img_keeps_source"].items():
        ax.plot([starts.get(n, out["toy_first_timestep"])], [v], "x", ms=8,
                label=f"unguided img2img keeps ({n} steps, from its first timestep)")
    ax.axvline(out["toy_first_timestep"], color="grey", ls=":", lw=1)
    ax.text(out["toy_first_timestep"], 0.02, "toy edit starts ", color="grey", fontsize=8, ha="right")
    ax.set(xlabel="timestep t (of 1000)", ylabel="share of faces / probability", ylim=(0, 1.05),
           title=f"Where the source's expression is lost ({out['faces']} faces x {out['draws']} draws)")
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 0.12))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print("wrote", path)


if __name__ == "__main__":
    main()

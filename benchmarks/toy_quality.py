"""Quality bars of the bundled toy models (issue: the toy face world). Prints JSON.

    python benchmarks/toy_quality.py                 # full: 30 faces x 6 targets, 16 particles
    python benchmarks/toy_quality.py --faces 5       # quicker

Measures on held-out faces (identities never seen in training):
classifier and judge accuracy; VAE PSNR and classifier accuracy on reconstructions;
unguided img2img keeping the source expression; SMC steering's judge flip rate against
unguided img2img at the same strength and steps; identity kept (pixel distance outside
the brow/eye/mouth region); seconds per counterfactual.
"""
import argparse
import json
import time

import torch

from emosmc.cli import TOY_EDIT
from emosmc.metrics import accuracy, identity_distance, psnr
from emosmc.pipeline import EmotionEditPipeline
from emosmc.profiles import get_profile
from emosmc.toy import HELDOUT_SEED, toy_faces
from emosmc.toyfaces import EMOTIONS, render
from emosmc.training import images_to_tensor


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--faces", type=int, default=30)
    p.add_argument("--heldout", type=int, default=100, help="identities for the accuracy / PSNR figures")
    p.add_argument("--seed", type=int, default=0)
    for k, v in TOY_EDIT.items():
        p.add_argument("--" + k.replace("_", "-"), type=type(v), default=v)
    a = p.parse_args()
    settings = {k: getattr(a, k) for k in TOY_EDIT}
    torch.manual_seed(a.seed)
    prof = get_profile("toy")
    pipe = EmotionEditPipeline.from_profile(prof)
    judge = prof.load("judge")
    out = {"settings": settings, "faces": a.faces, "threads": torch.get_num_threads()}

    imgs, labels, ids, who = toy_faces(a.heldout, HELDOUT_SEED)
    x = images_to_tensor(imgs)
    out["classifier_accuracy"] = accuracy(pipe.classifier, x, labels)
    out["judge_accuracy"] = accuracy(judge, x, labels)
    with torch.no_grad():
        rec = torch.cat([pipe.decode(pipe.encode(b)) for b in x.split(256)])
    out["vae_psnr_db"] = float(psnr(rec, x).mean())
    out["classifier_accuracy_on_reconstructions"] = accuracy(pipe.classifier, rec, labels)
    out["judge_accuracy_on_reconstructions"] = accuracy(judge, rec, labels)

    # steering: face i shown with expression EMOTIONS[i % 7], edited towards the 6 others
    F = a.faces
    src_idx = torch.tensor([i * 7 + i % 7 for i in range(F)])
    src, src_lab = x[src_idx], labels[src_idx]
    rows = [(i, t) for i in range(F) for t in range(7) if t != int(src_lab[i])]
    xs = src[[i for i, _ in rows]]
    tgt = torch.tensor([t for _, t in rows])
    idents = [ids[i] for i, _ in rows]
    g = torch.Generator().manual_seed(a.seed)
    t0 = time.time()
    res = pipe(xs, [EMOTIONS[t] for t in tgt], generator=g, progress=True, **settings)
    smc_s = time.time() - t0
    t0 = time.time()
    plain = pipe.img2img(xs, settings["num_inference_steps"], settings["noise_strength"], 1,
                         generator=torch.Generator().manual_seed(a.seed))[:, 0]
    plain_s = time.time() - t0
    with torch.no_grad():
        j_smc, j_plain = judge(res.images).argmax(-1), judge(plain).argmax(-1)
    src_rows = src_lab[[i for i, _ in rows]]
    other = images_to_tensor(torch.stack([torch.from_numpy(render(ids[(i + 1) % a.heldout], EMOTIONS[t]))
                                          for i, t in rows]))
    truth = images_to_tensor(torch.stack([torch.from_numpy(render(ids[i], EMOTIONS[t])) for i, t in rows]))
    out["steering"] = {
        "counterfactuals": len(rows),
        "smc_judge_flip_rate": float((j_smc == tgt).float().mean()),
        "unguided_judge_flip_rate": float((j_plain == tgt).float().mean()),
        "unguided_keeps_source_expression": float((j_plain == src_rows).float().mean()),
        "smc_classifier_target_prob": float(res.target_probs.mean()),
        "smc_flip_rate_by_target": {EMOTIONS[t]: float((j_smc[tgt == t] == t).float().mean()) for t in range(7)},
        "identity_l1_source_vs_smc_edit": float(identity_distance(xs, res.images, idents).mean()),
        "identity_l1_source_vs_unguided": float(identity_distance(xs, plain, idents).mean()),
        "identity_l1_source_vs_true_counterfactual": float(identity_distance(xs, truth, idents).mean()),
        "identity_l1_source_vs_other_identity": float(identity_distance(xs, other, idents).mean()),
        "seconds_per_counterfactual_smc": round(smc_s / len(rows), 3),
        "seconds_per_counterfactual_unguided": round(plain_s / len(rows), 3),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

"""The expression regions the detectors find, drawn on the faces: the toy world's detector on held-out toy faces,
MTCNN's landmarks on the shared CelebA-HQ photos. Prints JSON (how often a face and its landmarks were found,
and the share of each image the region covers).

    python benchmarks/region_masks.py --toy-figure benchmarks/results/region_masks_toy.png \\
        --photos ../shared/data/celebahq-samples/256 --photo-figure outputs/region_masks_celebahq.png

The photo figure goes outside the repository by default (the photos are not ours to copy into it).
"""
import argparse
import warnings
from pathlib import Path

import torch
from results_json import emit

from emosmc.data import ImageFolderDataset, images_to_tensor
from emosmc.profiles import get_profile
from emosmc.regions import MTCNNRegionDetector, covers
from emosmc.toy.gallery import toy_gallery
from emosmc.viz import region_figure


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--toy-faces", type=int, default=16)
    p.add_argument("--toy-figure", default="benchmarks/results/region_masks_toy.png")
    p.add_argument("--photos", help="a folder of face photos (e.g. ../shared/data/celebahq-samples/256)")
    p.add_argument("--photo-figure", default="outputs/region_masks_celebahq.png")
    p.add_argument("--out")
    a = p.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    out = {}
    g = toy_gallery(a.toy_faces)
    x = torch.stack([g[k] for k in g])
    m = get_profile("toy").load("region_detector", "cpu")(x)
    Path(a.toy_figure).parent.mkdir(parents=True, exist_ok=True)
    region_figure(x, m, [k.replace("toy face ", "face ") for k in g]).savefig(a.toy_figure, dpi=90)
    out["toy"] = {"faces": len(x), "region_share_mean": round(float(m.mean()), 3), "figure": a.toy_figure}
    if a.photos:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = ImageFolderDataset(a.photos, 256)
            photos = torch.stack([ds[i] for i in range(len(ds))])
            det = MTCNNRegionDetector()
            lms = det.landmarks(photos)
            masks = det(photos)
        found = [i for i, lm in enumerate(lms) if lm is not None]
        ok = [i for i in found if covers(masks[i], lms[i][[0, 1, 3, 4]])]
        Path(a.photo_figure).parent.mkdir(parents=True, exist_ok=True)
        titles = [f"{Path(f).stem[:10]}" + ("" if lms[i] is not None else "\nno face") for i, f in enumerate(ds.files)]
        region_figure(photos, masks, titles, ncols=8, scale=1.5).savefig(a.photo_figure, dpi=80)
        out["photos"] = {"photos": len(photos), "face_found": len(found), "mask_covers_eyes_and_mouth": len(ok),
                         "region_share_mean": round(float(masks[found].mean()), 3) if found else None,
                         "figure": a.photo_figure}
    emit(out, a.out)


if __name__ == "__main__":
    main()

"""``python -m emosmc.toy``: ``train-assets`` trains the bundled toy models (:mod:`emosmc.toy.assets`),
``write-dataset`` renders a toy-face image folder."""
import argparse
import json
from pathlib import Path

from . import assets
from .assets import train_assets
from .dataset import write_dataset
from .faces import HELDOUT_SEED


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m emosmc.toy", description=assets.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train-assets", help="train the bundled toy models from scratch")
    t.add_argument("--out", default=str(Path(__file__).parents[1] / "assets" / "toy"))
    t.add_argument("--scale", type=float, default=1.0, help="fraction of the default data and steps")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--long-refine", action=argparse.BooleanOptionalAction, default=True,
                   help="12000 more annealed UNet steps before the latent scorer, as the bundled UNet had (62 minutes "
                        "on 2 threads); --no-long-refine skips it (the UNet's samples then miss the face bar)")
    w = sub.add_parser("write-dataset", help="render a toy-face image folder with labels.csv")
    w.add_argument("out")
    w.add_argument("--identities", type=int, default=100)
    w.add_argument("--seed", type=int, default=HELDOUT_SEED)
    return p


def main(argv=None):
    a = parser().parse_args(argv)
    if a.cmd == "train-assets":
        print(json.dumps(train_assets(Path(a.out), a.scale, a.seed, long_refine=a.long_refine), indent=2))
    else:
        print(write_dataset(a.out, a.identities, a.seed))


if __name__ == "__main__":
    main()

"""Build the shapes-world atlas from the command line, in one process or sharded with torchrun::

    python -m conceptscope.atlas --path atlas_dir --samples 1000
    torchrun --nproc_per_node 2 -m conceptscope.atlas --path atlas_dir --samples 1000

Under torchrun each process joins the group (NCCL with one GPU per process, gloo on CPU), explains its share of the
batches, and rank 0 writes the atlas. Running the same command again resumes an interrupted build.
"""
import argparse

from ..engine import Explainer
from ..world import load_world
from . import Atlas
from .build import MODES, TARGETS
from .distributed import init_from_env


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m conceptscope.atlas", description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", required=True, help="atlas directory")
    parser.add_argument("--variant", default=None, help="world variant (e.g. 'spurious')")
    parser.add_argument("--arch", default="vgg", choices=("vgg", "resnet"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--samples", type=int, default=1000, help="dataset size")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--layers", nargs="+", default=None, help="default: every conv/linear layer")
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--target", default="label", choices=TARGETS)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--checkpoint-every", type=int, default=50, help="batches between checkpoints")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument("--composite", default=None)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    device = init_from_env()
    world = load_world("shapes", args.variant)
    explainer = Explainer(world.load_model(args.arch).to(device), args.composite, mean=world.mean, std=world.std)
    dataset = world.dataset(args.split, args.samples, args.seed)
    atlas = Atlas.build(explainer, dataset, args.layers or list(explainer.layers), args.path, k=args.k,
                        modes=args.modes, batch_size=args.batch_size, target=args.target,
                        checkpoint_every=args.checkpoint_every, num_workers=args.workers,
                        progress=not args.no_progress)
    if atlas is not None:
        print(atlas)


if __name__ == "__main__":
    main()

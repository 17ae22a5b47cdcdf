"""``effnet data make-shapes | show | build-tfrecords | bench``: the kit's input data."""

from __future__ import annotations

import argparse

from .common import DATA_SOURCES, quiet_backend


def add_commands(sub) -> None:
    data = sub.add_parser(
        "data", help="make the embedded data set, convert, preview and time input pipelines",
        description="Input data: the embedded shapes set, image folders, ImageNet TFRecords, "
                    "TFDS and synthetic images.", epilog=DATA_SOURCES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)

    make = commands.add_parser("make-shapes", help="generate the shapes data set into a folder",
                               description="Render the shapes classification set as JPEG class "
                                           "folders (deterministic for a seed).")
    make.add_argument("--output-dir", "--out", dest="out", required=True, metavar="DIR",
                      help="folder to create")
    make.add_argument("--image-size", type=int, default=128, help="side of the square images in pixels")
    make.add_argument("--train", type=int, default=10000, help="training images (default 10000)")
    make.add_argument("--val", type=int, default=2000, help="validation images (default 2000)")
    make.add_argument("--classes", type=int, default=10, help="number of classes")
    make.add_argument("--class-set", choices=("fine", "distinct"), default="fine",
                      help="fine (default): classes told apart by fine detail; distinct: shapes a "
                           "small model tells apart quickly")
    make.add_argument("--seed", type=int, default=0, help="the same seed draws the same images")
    make.add_argument("--tfrecords", action="store_true",
                      help="also write ImageNet-layout TFRecord shards into OUT/tfrecords")
    make.set_defaults(func=run_make_shapes)

    show = commands.add_parser("show", help="save a grid of augmented samples as PNG",
                               description="Save a grid of samples as the model sees them, with "
                                           "their labels.", epilog=DATA_SOURCES)
    show.add_argument("source", nargs="?", default="shapes", help="a data source (see below)")
    show.add_argument("--split", choices=("train", "validation"), default="train",
                      help="train shows the training augmentation")
    show.add_argument("--image-size", type=int, default=128, help="size the samples are cropped to")
    show.add_argument("--count", type=int, default=16, help="samples in the grid")
    show.add_argument("--mixup-alpha", type=float, default=0.0, help="Mixup's Beta(alpha, alpha); 0: off")
    show.add_argument("--cutmix-lambda", type=float, default=1.0, help="CutMix's kept share; 1: off")
    show.add_argument("--seed", type=int, default=0, help="the same seed draws the same samples")
    show.add_argument("--output", "--out", dest="out", default="figures/data_samples.png",
                      help="PNG to write")
    show.set_defaults(func=run_show)

    build = commands.add_parser("build-tfrecords", help="convert an image folder into ImageNet-layout shards",
                                description="Write FOLDER/{train,validation}/<class>/* as "
                                            "train-XXXXX-of-NNNNN / validation-... TFRecord shards.")
    build.add_argument("folder", help="an image folder: FOLDER/{train,validation}/<class>/*.jpg|png")
    build.add_argument("out", metavar="OUTPUT_DIR", help="where the shards go (created)")
    build.add_argument("--train-shards", type=int, default=8, help="files for the training split")
    build.add_argument("--validation-shards", type=int, default=2, help="files for the validation split")
    build.set_defaults(func=run_build_tfrecords)

    bench = commands.add_parser("bench", help="images/s of the input pipeline against bare decoding",
                                description="Time the full training input pipeline and a bare "
                                            "decode loop over the same files.", epilog=DATA_SOURCES)
    bench.add_argument("source", nargs="?", default="shapes", help="a data source (see below)")
    bench.add_argument("--image-size", type=int, default=224, help="size the images are cropped to")
    bench.add_argument("--batch-size", type=int, default=64, help="images per batch")
    bench.add_argument("--images", type=int, default=3000, help="images timed per loop and round")
    bench.add_argument("--rounds", type=int, default=3,
                       help="the two loops take turns this many times; medians are reported")
    bench.add_argument("--cache", action="store_true", help="cache encoded files in memory")
    bench.set_defaults(func=run_bench)


def run_make_shapes(args):
    from ..data.shapes import make_shapes

    root = make_shapes(args.out, image_size=args.image_size, train=args.train,
                       validation=args.val, classes=args.classes, seed=args.seed,
                       class_set=args.class_set)
    print(f"shapes data set in {root}")
    if args.tfrecords:
        from ..data.tfrecords import build_tfrecords

        for path in build_tfrecords(root, root / "tfrecords"):
            print(f"wrote {path}")


def run_show(args):
    quiet_backend()
    from ..data import Augmentation, make_dataset
    from ..data.preview import save_grid

    augmentation = Augmentation(mixup_alpha=args.mixup_alpha, cutmix_lambda=args.cutmix_lambda)
    data = make_dataset(args.source, args.split, args.image_size, min(args.count, 64),
                        seed=args.seed, augmentation=augmentation)
    print(f"wrote {save_grid(data, args.out, count=args.count)}")


def run_build_tfrecords(args):
    from ..data.tfrecords import build_tfrecords

    for path in build_tfrecords(args.folder, args.out, args.train_shards, args.validation_shards):
        print(f"wrote {path}")


def run_bench(args):
    quiet_backend()
    from ..data.bench import bench, explain

    result = bench(args.source, args.image_size, args.batch_size, args.images, rounds=args.rounds,
                   cache=args.cache)
    size = result["source_size"]
    sources = f", sources {size[0]}x{size[1]} px (median)" if size else ""
    print(f"{args.source} at {args.image_size}px, batch {args.batch_size}{sources}; "
          f"medians of {args.rounds} rounds:")
    print(f"  training pipeline  {result['pipeline_images_per_s']:9.0f} images/s")
    if "ratio" in result:
        print(f"  bare decode        {result['bare_decode_images_per_s']:9.0f} images/s")
        print(f"  ratio              {result['ratio']:9.2f}  (pipeline / bare decode; rounds: "
              + ", ".join(f"{r['ratio']:.2f}" for r in result["rounds_measured"]) + ")")
    print(f"  {explain(result)}")

"""``effnet export | predict``: a trained model for serving, and image files classified with it."""

from __future__ import annotations

from .common import quiet_backend


def add_commands(sub) -> None:
    export = sub.add_parser(
        "export", help="write a model for serving: model.keras, a SavedModel, export.json",
        description="Export a run folder, a checkpoint or a model name (untrained, for timing) "
                    "into a new folder: model.keras (Keras), saved_model/ (TensorFlow Serving's "
                    "format, a 'serve' endpoint) and export.json (input size, classes, "
                    "preprocessing). The model is rewritten for inference (BatchNorm folded into "
                    "the convolutions, Proxy Norm's proxy moments stored, dropout removed; the "
                    "same outputs within float32 rounding) unless --no-rewrite.")
    export.add_argument("source", metavar="NAME|RUN", help="a run folder, a checkpoint or a model name")
    export.add_argument("--output-dir", "--out", dest="out", required=True, metavar="DIR",
                        help="a new or empty folder")
    export.add_argument("--no-rewrite", action="store_true",
                        help="export the model as trained, without the inference rewrites")
    export.set_defaults(func=run_export)

    predict = sub.add_parser(
        "predict", help="top-5 classes of JPEG/PNG images with a trained model",
        description="Classify image files (or every JPEG/PNG under folders) with an exported "
                    "model, a run folder or a checkpoint; the images are preprocessed as "
                    "validation is. Unreadable files are named with the reason; the others are "
                    "still classified, and the exit status is 1.")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders")
    predict.add_argument("--model", required=True, metavar="RUN|DIR",
                         help="a run folder, a checkpoint or an exported folder")
    predict.add_argument("--top", type=int, default=5, help="classes shown per image (default 5)")
    predict.set_defaults(func=run_predict)


def run_export(args) -> int:
    quiet_backend()
    from ..training.inference import export

    export(args.source, args.out, rewrite=not args.no_rewrite)
    return 0


def run_predict(args) -> int:
    quiet_backend()
    from ..training.inference import predict

    if args.top < 1:
        raise ValueError(f"--top {args.top}: it must be at least 1.")
    failed = 0
    for result in predict(args.images, args.model, top=args.top):
        if result.error:
            failed += 1
            print(f"{result.path}: error: {result.error}")
            continue
        shown = ", ".join(f"{name} {probability:.3f}" for name, probability in result.top)
        print(f"{result.path}: {shown}")
    return 1 if failed else 0

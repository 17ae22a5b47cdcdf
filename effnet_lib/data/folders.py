"""Class-folder data sets: ``ROOT/<split>/<class>/*.jpg|png``.

This is the layout of Imagenette, Imagewoof and most users' own data, and of the
embedded shapes set. Classes are the sub-folders, in sorted order: label ``i`` is
the ``i``-th name of :attr:`FolderListing.class_names`, recorded with the data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
SPLIT_FOLDERS = {"train": ("train",), "validation": ("validation", "val")}


@dataclass(frozen=True)
class FolderListing:
    root: Path
    split: str
    class_names: list[str]
    files: list[str]
    labels: list[int]


def split_folder(root, split: str) -> Path:
    root = Path(root)
    if split not in SPLIT_FOLDERS:
        raise ValueError(f"split={split!r}: accepted {', '.join(SPLIT_FOLDERS)}.")
    if not root.is_dir():
        raise FileNotFoundError(f"{root} does not exist or is not a folder.")
    for name in SPLIT_FOLDERS[split]:
        if (root / name).is_dir():
            return root / name
    raise FileNotFoundError(
        f"{root} has no {' or '.join(SPLIT_FOLDERS[split])}/ folder: expected "
        f"{root}/train/<class>/*.jpg and {root}/validation/<class>/*.jpg (or val/), one "
        f"sub-folder per class.")


def list_images(root, split: str) -> FolderListing:
    """Every image of a split with its label; specific errors for empty or odd folders."""
    folder = split_folder(root, split)
    classes = sorted(entry.name for entry in os.scandir(folder)
                     if entry.is_dir() and not entry.name.startswith("."))
    if not classes:
        raise FileNotFoundError(f"{folder} holds no class sub-folders: put each class's images in "
                                f"{folder}/<class name>/.")
    files, labels = [], []
    for label, name in enumerate(classes):
        images = sorted(entry.path for entry in os.scandir(folder / name)
                        if entry.is_file() and entry.name.lower().endswith(IMAGE_EXTENSIONS))
        if not images:
            raise FileNotFoundError(f"class folder {folder / name} holds no images "
                                    f"({', '.join(IMAGE_EXTENSIONS)}): remove it or add images.")
        files += images
        labels += [label] * len(images)
    return FolderListing(Path(root), split, classes, files, labels)


def check_same_classes(train: list[str], validation: list[str], root) -> None:
    """Train and validation must name the same classes, or labels would silently disagree."""
    if train == validation:
        return
    only_train = sorted(set(train) - set(validation))
    only_valid = sorted(set(validation) - set(train))
    raise ValueError(
        f"{root}: the train and validation class folders differ "
        f"(only in train: {only_train[:10] or 'none'}; only in validation: "
        f"{only_valid[:10] or 'none'}). Labels are the sorted class names, so both splits must "
        f"have the same ones.")

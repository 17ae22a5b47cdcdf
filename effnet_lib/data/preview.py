"""A grid of what the model will see: augmented samples with their (soft) labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..common.files import save_figure


def label_text(target, class_names) -> str:
    """``"star5"``, or the two largest parts of a soft label: ``"star5 .82 / circle .18"``."""
    target = np.asarray(target)
    if target.ndim == 0:
        return class_names[int(target)]
    top = np.argsort(target)[::-1][:2]
    parts = [f"{class_names[i]} {target[i]:.2f}" for i in top if target[i] > 0.02]
    return " / ".join(parts)


def save_grid(data, path, count: int = 16, columns: int = 4) -> Path:
    """Save ``count`` samples of ``data`` (a :class:`~effnet_lib.data.Data`) as a PNG grid
    (``path`` ends in ``.png``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images, labels = [], []
    for batch_images, batch_labels in data.dataset:
        images += list(batch_images.numpy())
        labels += list(batch_labels.numpy())
        if len(images) >= count:
            break
    images, labels = images[:count], labels[:count]
    if not images:
        raise ValueError(f"{data.source} ({data.split}) gave no images to show.")
    rows = -(-len(images) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.4 * rows), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, image, target in zip(axes.flat, images, labels):
        axis.imshow(image)
        axis.set_title(label_text(target, data.class_names), fontsize=7)
    figure.suptitle(f"{data.source} · {data.split} · {data.image_size}px", fontsize=9)
    figure.tight_layout()
    path = Path(path)
    saved = save_figure(figure, path.parent, path.stem, dpi=110)
    plt.close(figure)
    return saved

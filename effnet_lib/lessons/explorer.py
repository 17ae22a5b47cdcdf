"""The FLOPs/memory explorer: an ipywidgets panel over the profiler.

Two columns of the same controls (model size, group size, expansion ratio,
norm, resolution, batch size, precision, pipeline splits): the configuration
you are exploring, and a baseline to compare it with. Every change recounts,
from the architecture spec, the multiply-adds, parameters, activation memory
and training-memory estimate (:mod:`effnet_lib.profiling`), redraws the per-stage
and per-block plots and the pipeline-stage balance, and shows the ratio of the
two columns. Nothing is measured or run: it is arithmetic over the spec, so it
updates instantly for any size, B7 at 600 px included.

Use it in JupyterLab or the classic notebook::

    from effnet_lib.lessons.explorer import Explorer
    Explorer().widget            # the last expression of a cell displays it

Headless (papermill, tests), :meth:`Explorer.figure` draws the same plots
without a front end, and ``explorer.config.numbers`` holds what is displayed.
"""

from __future__ import annotations

import html

import ipywidgets as w

from ..common.precision import SHORT_NAMES
from ..models.norms import NORMS
from ..models.spec import PRESETS, EfficientNetSpec
from ..profiling import Profile, profile, stage_balance, training_memory

GROUP_SIZES = (1, 2, 4, 8, 16, 32, 64)
NORM_CHOICES = tuple(norm.upper() for norm in NORMS)
PRECISIONS = tuple(sorted(SHORT_NAMES))  # bits per activation: "16", "32"
GIB = 2**30


def _spec(size: str, group_size: int, expand_ratio: int, norm: str) -> EfficientNetSpec:
    return EfficientNetSpec.from_name(f"{size}-G{group_size}-{norm}", expand_ratio=expand_ratio)


def _splits(text: str) -> list[str]:
    return [s.strip() for s in text.replace(";", ",").split(",") if s.strip()]


class ConfigPanel:
    """One column: controls for one configuration and the numbers it gives."""

    def __init__(self, title: str, size="B0", group_size=16, expand_ratio=None, norm="LN_PN",
                 image_size=None, batch_size=32, precision="16", splits="", on_change=None):
        expand_ratio = expand_ratio or (6 if group_size == 1 else 4)
        image_size = image_size or PRESETS[size][2]
        style = dict(description_width="9em")
        layout = w.Layout(width="24em")
        self.controls = dict(
            size=w.Dropdown(options=list(PRESETS), value=size, description="model size",
                            style=style, layout=layout),
            group_size=w.Dropdown(options=list(GROUP_SIZES), value=group_size,
                                  description="group size", style=style, layout=layout),
            expand_ratio=w.IntSlider(value=expand_ratio, min=1, max=8, description="expansion",
                                     style=style, layout=layout),
            norm=w.Dropdown(options=list(NORM_CHOICES), value=norm, description="norm", style=style,
                            layout=layout),
            image_size=w.IntSlider(value=image_size, min=32, max=640, step=4,
                                   description="resolution", style=style, layout=layout),
            batch_size=w.BoundedIntText(value=batch_size, min=1, max=4096,
                                        description="batch size", style=style, layout=layout),
            precision=w.ToggleButtons(options=list(PRECISIONS), value=precision,
                                      description="precision", style=style),
            splits=w.Text(value=splits, placeholder="e.g. block3b, block5a",
                          description="pipeline splits", style=style, layout=layout),
        )
        self.title = w.HTML(f"<b>{html.escape(title)}</b>")
        self.summary = w.HTML()
        self.stages = w.HTML()
        self.numbers: dict = {}
        self.profile: Profile | None = None
        self.error: str | None = None
        self._on_change = on_change
        for control in self.controls.values():
            control.observe(self._changed, names="value")
        self.box = w.VBox([self.title, *self.controls.values(), self.summary, self.stages])
        self.update()

    @property
    def values(self) -> dict:
        return {name: control.value for name, control in self.controls.items()}

    def set(self, **values) -> None:
        """Set several controls at once (one recount at the end)."""
        callback, self._on_change = self._on_change, None
        try:
            for name, value in values.items():
                self.controls[name].value = value
        finally:
            self._on_change = callback
        self._changed()

    def _changed(self, change=None) -> None:
        if change is not None and change["name"] == "value" and change["owner"] is self.controls["group_size"]:
            # The paper's pairing: depthwise with expansion 6, grouped with 4.
            wanted = 6 if change["new"] == 1 else 4
            if self.controls["expand_ratio"].value != wanted:
                self.controls["expand_ratio"].value = wanted
                return  # that change fires its own update
        self.update()
        if self._on_change:
            self._on_change()

    def update(self) -> None:
        v = self.values
        spec = _spec(v["size"], v["group_size"], v["expand_ratio"], v["norm"])
        prof = profile(spec, image_size=v["image_size"], batch_size=v["batch_size"],
                       precision=v["precision"])
        memory = training_memory(prof)
        self.error = None
        try:
            balance = stage_balance(prof, _splits(v["splits"]))
        except ValueError as error:
            self.error = str(error)
            balance = stage_balance(prof, [])
        self.profile = prof
        self.balance = balance
        self.numbers = dict(
            name=spec.name, macs=prof.macs, macs_per_image=prof.macs // prof.batch_size,
            params=prof.params, norm_params=prof.norm_params, total_params=prof.total_params,
            activation_bytes=prof.activation_bytes, training_memory_bytes=memory["total"],
            training_memory=memory, stage_macs=list(balance.macs), imbalance=float(balance.imbalance.max()))
        self.summary.value = self._summary_html()
        self.stages.value = self._stages_html()

    def _summary_html(self) -> str:
        n, p = self.numbers, self.profile
        rows = [("multiply-adds per image", f"{n['macs_per_image'] / 1e9:.3f} G"),
                (f"multiply-adds, batch of {p.batch_size}", f"{n['macs'] / 1e9:.2f} G"),
                ("conv/dense parameters", f"{n['params'] / 1e6:.3f} M"),
                ("norm + Proxy Norm parameters", f"{n['norm_params'] / 1e3:.1f} K"),
                (f"activation memory ({p.precision}-bit)", f"{n['activation_bytes'] / GIB:.3f} GiB"),
                ("training memory, estimate", f"{n['training_memory_bytes'] / GIB:.3f} GiB")]
        body = "".join(f"<tr><td>{k}</td><td style='text-align:right'>{v}</td></tr>" for k, v in rows)
        return (f"<b>{html.escape(n['name'])}</b> at {p.image_size}px"
                f"<table>{body}</table><small>Training memory is an estimate: activations kept "
                f"for the backward pass + float32 weights, gradients and 2 RMSprop slots.</small>")

    def _stages_html(self) -> str:
        if self.error:
            return f"<span style='color:#b00'>{html.escape(self.error)}</span>"
        rows = "".join(
            f"<tr><td>{r.pipeline_stage}</td><td>{r.first_block}..{r.last_block}</td>"
            f"<td style='text-align:right'>{r.macs / 1e9:.3f} G</td>"
            f"<td style='text-align:right'>{r.params / 1e6:.2f} M</td>"
            f"<td style='text-align:right'>{r.activation_bytes / GIB:.3f} GiB</td>"
            f"<td style='text-align:right'>{r.imbalance:.2f}</td></tr>"
            for r in self.balance.itertuples())
        return ("<b>pipeline stages</b><table><tr><th>stage</th><th>blocks</th>"
                "<th>multiply-adds</th><th>params</th><th>activations</th><th>imbalance</th></tr>"
                f"{rows}</table>")


class Explorer:
    """A configuration and a baseline side by side, with their ratio and plots."""

    def __init__(self, config: dict | None = None, baseline: dict | None = None, plots: bool = True):
        config = {**dict(size="B0", group_size=16, norm="LN_PN", image_size=160), **(config or {})}
        baseline = {**dict(size="B0", group_size=1, norm="GN", image_size=224), **(baseline or {})}
        self.plots = plots
        self.comparison = w.HTML()
        self.output = w.Output()
        self.config = ConfigPanel("Configuration", on_change=self.refresh, **config)
        self.baseline = ConfigPanel("Baseline", on_change=self.refresh, **baseline)
        self.widget = w.VBox([w.HBox([self.config.box, self.baseline.box]), self.comparison,
                              self.output])
        self.refresh()

    @property
    def ratios(self) -> dict:
        """Configuration over baseline for each headline number."""
        a, b = self.config.numbers, self.baseline.numbers
        keys = ("macs_per_image", "params", "activation_bytes", "training_memory_bytes")
        return {k: a[k] / b[k] for k in keys}

    def refresh(self) -> None:
        labels = dict(macs_per_image="multiply-adds per image", params="parameters",
                      activation_bytes="activation memory",
                      training_memory_bytes="training memory (estimate)")
        cells = "".join(f"<tr><td>{labels[k]}</td><td style='text-align:right'>{r:.2f}x</td></tr>"
                        for k, r in self.ratios.items())
        self.comparison.value = f"<b>configuration / baseline</b><table>{cells}</table>"
        if self.plots:
            import matplotlib.pyplot as plt
            from IPython.display import display

            self.output.clear_output(wait=True)
            with self.output:
                fig = self.figure()
                display(fig)
                plt.close(fig)

    def figure(self):
        """Per-stage multiply-adds and activation memory, and per-block multiply-adds, for both."""
        import matplotlib.pyplot as plt
        import numpy as np
        from matplotlib.ticker import MaxNLocator

        fig, (ax_stage, ax_mem, ax_block) = plt.subplots(1, 3, figsize=(15, 3.8))
        panels = [(self.config, "configuration"), (self.baseline, "baseline")]
        for offset, (panel, label) in zip((-0.2, 0.2), panels):
            by_stage = panel.profile.by("stage")
            x = np.arange(len(by_stage))
            name = f"{label}: {panel.numbers['name']} {panel.profile.image_size}px"
            ax_stage.bar(x + offset, by_stage.macs / panel.profile.batch_size / 1e6, 0.4, label=name)
            ax_mem.bar(x + offset, by_stage.activation_bytes / 2**20, 0.4, label=name)
            by_block = panel.profile.by("block")
            ax_block.plot(np.arange(len(by_block)), by_block.macs / panel.profile.batch_size / 1e6,
                          ".-", label=name)
        stage_labels = ["stem", *[str(s) for s in range(1, 8)], "head"]
        for ax in (ax_stage, ax_mem):
            ax.set_xticks(range(9), stage_labels)
            ax.set_xlabel("stage")
        ax_stage.set_ylabel("multiply-adds per image (M)")
        ax_mem.set_ylabel("activation memory, batch (MiB)")
        ax_block.set_xlabel("block number (0 = stem, last = head)")
        ax_block.set_ylabel("multiply-adds per image (M)")
        ax_block.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax_stage.set_title("Multiply-adds per stage")
        ax_mem.set_title("Activations kept for the backward pass")
        ax_block.set_title("Multiply-adds per block")
        ax_stage.legend(fontsize=8)
        fig.tight_layout()
        return fig

"""Shared leaves: what every room of the kit uses and nothing else in the kit provides.

* :mod:`~effnet_lib.common.files`: atomic writes, Markdown tables, saved figures and tables;
* :mod:`~effnet_lib.common.paths`: the kit's data and cache folder (``$EFFNET_DATA_DIR``);
* :mod:`~effnet_lib.common.precision`: the one table of numeric precisions;
* :mod:`~effnet_lib.common.fresh_process`: run one measurement in a new Python process;
* :mod:`~effnet_lib.common.optimizer_slots`: a compiled model's optimizer built before its
  first step (one trace of the step instead of two).

Modules here import nothing from the rest of ``effnet_lib``.
"""

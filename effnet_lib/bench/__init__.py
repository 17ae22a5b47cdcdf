"""Measured speed: models beside their peers, one convolution over group sizes.

* :mod:`.throughput`: ``benchmark`` (a model against keras.applications and timm,
  paired timing) and ``measure_variants`` (several models in one run);
* :mod:`.group_sizes`: one k x k convolution timed over group sizes and implementations;
* :mod:`.steps`: the jobs each measuring process runs; :mod:`.timing`: how they time,
  the matrix-product yardstick and the environment saved with every result;
* :mod:`.references` and :mod:`.timm_models`: which peers can be measured, timm's model
  matched to a spec, and what still differs;
* :mod:`.speed_table`: the README's speed table, written from recorded runs.
"""

from .throughput import BenchmarkReport, benchmark, format_table, measure_variants

__all__ = ["BenchmarkReport", "benchmark", "format_table", "measure_variants"]

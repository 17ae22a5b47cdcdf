"""The paper's numbers: what it reported (package data, with sources) and its tables, computed here.

* :mod:`.results`: ``reported()``, the digitised figure values in ``reported_results.csv``;
* :mod:`.tables`: multiply-adds and parameters computed beside reported, the model
  table beside keras.applications, skip statistics, throughput here beside the IPU's;
* :mod:`.figures`: the front-page figure (reported accuracy against computed multiply-adds).
"""

from .results import reported

__all__ = ["reported"]

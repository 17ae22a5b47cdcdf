"""Lesson code: what the notebooks in ``notebooks/`` call, and the runner that executes them.

* :mod:`.runner`: ``run_notebooks`` (``effnet reproduce``) runs the lessons with papermill;
* :mod:`.records`: what a lesson saves (figures, tables, its record of key numbers) and
  its run budget (``smoke``, ``quick``, ``full``);
* :mod:`.lesson_data`: the data a lesson trains on, sized for its budget;
* :mod:`.norm_study`, :mod:`.small_scale`, :mod:`.apparent_size`: the measurements
  behind lessons 03 and 04; :mod:`.explorer`: the FLOPs/memory explorer of lesson 05.
"""

"""Run directories: running experiments into them, resumably, and their reports.

See :mod:`metastep.report.storage` for the layout, :mod:`metastep.report.runner` for running
and :mod:`metastep.report.build` for the report.
"""

from metastep.report.build import build_report
from metastep.report.runner import ExperimentRun, RunDirectoryError, run_experiment
from metastep.report.storage import RunDirectory

__all__ = ["ExperimentRun", "RunDirectory", "RunDirectoryError", "build_report", "run_experiment"]

"""``inferno simulate``: the control loop against the emulator, compared with baselines.

A :class:`Scenario` (:func:`load_scenario`) names the system data, the load traces, the control
period and the policies; :func:`run_scenario` runs each policy on its own
:class:`~inferno.emulator.Simulation` (same seed, same arrivals) through an
:class:`EmulatedCluster` (a :class:`~inferno.k8s.ClusterAPI` whose Deployments are the emulated
servers) and a :class:`MetricsSource` (noisy, windowed measurements); :func:`build_report` judges
every request against its SLO and totals GPU-hours and cost; :func:`write_csv`,
:func:`write_summary` and :func:`write_plots` write the time series, the summary and the plots.
The ``oracle`` policy (:mod:`.oracle`) knows the future: the yardstick. See ``docs/simulate.md``.
"""

from .cluster import EmulatedCluster
from .metrics import Measurement, MetricsSource
from .plots import write_plots
from .policies import HpaAlgorithm, peak_rate
from .report import Report, build_report
from .run import Progress, RunResult, run_scenario
from .scenario import Scenario, load_scenario, parse_scenario
from .tables import write_csv, write_summary

__all__ = [
    "EmulatedCluster",
    "HpaAlgorithm",
    "Measurement",
    "MetricsSource",
    "Progress",
    "Report",
    "RunResult",
    "Scenario",
    "build_report",
    "load_scenario",
    "parse_scenario",
    "peak_rate",
    "run_scenario",
    "write_csv",
    "write_plots",
    "write_summary",
]

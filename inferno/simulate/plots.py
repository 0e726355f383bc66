"""The plots of a simulation run (:func:`write_plots`): ``load.png``, ``replicas.png``,
``latency.png`` and ``cost.png``, drawn from a :class:`~inferno.simulate.report.Report`'s time
series with matplotlib (imported on first use: it takes a while to load)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..units import S_PER_HOUR, S_PER_MIN
from .report import Report

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["latency_panels", "write_plots"]

F = NDArray[np.float64]


#: a p95 latency/SLO ratio at or above this is the report's sentinel for requests with no answer
UNSERVED_RATIO = 1e6
#: where such a period is marked on the latency axis
UNSERVED_MARK = 1e3
#: the share missing drawn for a period where none missed (a log axis has no 0)
MISS_FLOOR = 0.01


def latency_panels(ratio: F, attainment: F) -> tuple[F, NDArray[np.bool_], F]:
    """What the latency plot draws from a policy's per-period p95 latency/SLO ratios and SLO
    attainments: the ratios with the report's no-answer sentinel taken out (NaN), where that
    sentinel was (marked, not drawn as a latency), and the % of requests missing their SLO,
    floored at :data:`MISS_FLOOR` for a log axis (on which 0.1% and 1% are far apart, where a
    0–100% axis shows them as the same line)."""
    unserved = ratio >= UNSERVED_RATIO
    missed = np.maximum(100.0 - 100.0 * attainment, MISS_FLOOR)
    return np.where(unserved, np.nan, ratio), unserved, missed


def write_plots(report: Report, out_dir: str | Path) -> list[Path]:
    """``load.png``, ``replicas.png``, ``latency.png`` and ``cost.png`` in ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    series: dict[str, list[dict[str, object]]] = {}
    for row in report.timeseries:
        series.setdefault(str(row["policy"]), []).append(row)
    names = [p.name for p in report.policies]
    colors = {n: f"C{i}" for i, n in enumerate(names)}
    styles = {n: ("-", "--", "-.", ":")[i % 4] for i, n in enumerate(names)}

    def col(rows: list[dict[str, object]], key: str) -> F:
        return np.array([_float(r[key]) for r in rows])

    def edges(rows: list[dict[str, object]]) -> F:
        """Period boundaries in minutes (one more than the periods)."""
        return np.append(col(rows, "t_start_s"), col(rows, "t_end_s")[-1]) / S_PER_MIN

    def steps(rows: list[dict[str, object]], key: str) -> F:
        v = col(rows, key)
        return np.append(v, v[-1])  # for drawstyle steps-post over the edges

    files: list[Path] = []
    # load
    fig, ax = plt.subplots(figsize=(9, 4))
    first = series[names[0]]
    x = edges(first)
    ax.step(x, steps(first, "offered_rpm"), where="post", color="k", label="offered (trace)")
    ax.step(x, steps(first, "arrived_rpm"), where="post", color="0.6", lw=1, label="arrived")
    measuring = [n for n in names if np.isfinite(col(series[n], "measured_rpm")).any()]
    if measuring:
        rows = series[measuring[0]]
        window = report.result.scenario.metrics
        ax.plot(
            col(rows, "t_end_s") / S_PER_MIN,
            col(rows, "measured_rpm"),
            ls="--",
            marker=".",
            color="C0",
            label=f"measured ({window.window_s:g} s window, {window.noise:.0%} noise)",
        )
    ax.set_xlabel("time (min)")
    ax.set_ylabel("requests / min (all servers)")
    ax.set_title("Load")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    files.append(_save(fig, root / "load.png"))
    # replicas per accelerator
    fig, axes = plt.subplots(
        len(names), 1, figsize=(9, 2.2 * len(names) + 0.8), sharex=True, squeeze=False
    )
    top = max(float(np.nanmax(col(series[n], "replicas"))) for n in names) * 1.1
    for ax, n in zip(axes[:, 0], names, strict=True):
        rows = series[n]
        stacks = [steps(rows, f"replicas_{a}") for a in report.accelerators]
        ax.stackplot(edges(rows), *stacks, labels=report.accelerators, step="post")
        ax.set_ylim(0, top)
        ax.set_ylabel("replicas")
        ax.set_title(n, fontsize="medium", loc="left")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize="x-small", ncol=min(len(report.accelerators), 6), loc="upper right")
    axes[-1, 0].set_xlabel("time (min)")
    fig.suptitle("Replicas per accelerator (provisioned, start-up included; mean per period)")
    files.append(_save(fig, root / "replicas.png"))
    # latency against SLO
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    unserved_drawn = False
    for n in names:
        rows = series[n]
        x = edges(rows)
        ratio, unserved, missed = latency_panels(
            steps(rows, "slo_p95_ratio"), steps(rows, "slo_attainment")
        )
        kw = {"color": colors[n], "ls": styles[n], "lw": 1.5}
        ax1.step(x, ratio, where="post", label=n, **kw)
        if unserved[:-1].any():
            mids = (x[:-1] + x[1:]) / 2
            label = "p95 not answered (rejected or still waiting)" if not unserved_drawn else None
            ax1.plot(
                mids[unserved[:-1]],
                np.full(int(unserved[:-1].sum()), UNSERVED_MARK),
                "x",
                color=colors[n],
                label=label,
            )
            unserved_drawn = True
        ax2.step(x, missed, where="post", label=n, **kw)
    ax1.axhline(1.0, color="k", ls=":", lw=1, label="SLO")
    ax1.set_yscale("log")
    ax1.set_ylabel("p95 of latency / SLO")
    ax1.set_title(
        "Latency against SLO, requests by arrival period (latency / SLO: the worst of wait, "
        "TTFT, ITL, latency against its target)",
        fontsize="small",
    )
    ax1.legend(fontsize="small")
    ax1.grid(alpha=0.3, which="both")
    ax2.axhline(1.0, color="k", ls=":", lw=1, label="1% (a 99% SLO)")
    ax2.set_yscale("log")
    ax2.set_ylim(bottom=MISS_FLOOR * 0.8)
    ax2.set_ylabel(f"requests missing SLO (%; {MISS_FLOOR:g}: none)")
    ax2.set_xlabel("time (min)")
    ax2.grid(alpha=0.3, which="both")
    files.append(_save(fig, root / "latency.png"))
    # cost
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for n in names:
        rows = series[n]
        kw = {"color": colors[n], "ls": styles[n], "lw": 1.5}
        ax1.step(edges(rows), steps(rows, "cost_per_hour"), where="post", label=n, **kw)
        span_h = (col(rows, "t_end_s") - col(rows, "t_start_s")) / S_PER_HOUR
        gpu_h = np.concatenate([[0.0], np.cumsum(col(rows, "gpus") * span_h)])
        ax2.plot(edges(rows), gpu_h, label=n, **kw)
    ax1.set_ylabel("cost per hour (accelerator-data.json's cost units)")
    ax1.set_ylim(bottom=0)
    ax1.set_title("Cost rate and cumulative GPU-hours")
    ax1.legend(fontsize="small")
    ax1.grid(alpha=0.3)
    ax2.set_ylabel("GPU-hours (cumulative)")
    ax2.set_xlabel("time (min)")
    ax2.grid(alpha=0.3)
    files.append(_save(fig, root / "cost.png"))
    report.files.extend(files)
    return files


def _float(v: object) -> float:
    if isinstance(v, int | float):
        return float(v)
    return math.nan


def _save(fig: Figure, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

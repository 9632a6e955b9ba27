"""The outputs of a run: JSON (everything, machine info included), Markdown (the issue's targets first, then the
tables) and PNG plots (effective GB/s against size, one line per implementation).

Reading the numbers:

* time: the median over rounds of the seconds per step.
* GB/s: the optimizer's unavoidable traffic (``bytes_per_element`` x elements, see
  :class:`~fusedoptim.cli.bench.cases.OptimizerSpec`) divided by the time, for every implementation alike; so it is
  an *effective* bandwidth, proportional to speed. The triad and ufunc probes use their own byte counts.
* of triad: that GB/s over the STREAM triad's, measured in the same run with the same threads on arrays of 4x
  the last-level cache. STREAM counts 24 bytes per float64 element but the write of ``a`` also reads it into
  the cache first (write-allocate), so a kernel that only writes what it has read can show more than 1.0 at
  DRAM sizes; in cache (small n) fractions above 1 are expected.
* ratio (``1.35x``): the peer's time over fusedoptim's, the median of the per-round ratios: above 1, fusedoptim
  is faster.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from typing import Any

from .peers import PEER_ORDER

__all__ = ["PEER_LABELS", "headline", "markdown", "write_json", "write_outputs", "write_plots"]

PEER_LABELS = {
    "fusedoptim": "fusedoptim",
    "fusedoptim_functional": "functional",
    "native": "native loop",
    "native_per_array": "native per array",
    "torch_fused": "torch fused",
    "torch_foreach": "torch foreach",
    "torch_forloop": "torch for-loop",
    "numpy_inplace": "NumPy in-place",
    "numpy_naive": "NumPy textbook",
    "reference": "reference",
    "stream_triad": "triad (same n)",
    "numpy_ufunc": "np.add(out=)",
}


# --- look-ups -----------------------------------------------------------------------------------------------


def _find(
    results: dict[str, Any], suite: str, optimizer: str, dtype: str, threads: int, elements: int | None = None
) -> dict[str, Any] | None:
    for case in results["cases"]:
        if (
            case["suite"] == suite
            and case["optimizer"] == optimizer
            and case["dtype"] == dtype
            and case["threads"] == threads
            and (elements is None or case["elements"] == elements)
        ):
            return case
    return None


def _time(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def _ratio(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.2f}x" if value < 100 else f"{value:.0f}x"


def _size(n: int) -> str:
    exponent = math.log10(n) if n > 0 else 0
    if n >= 1000 and abs(exponent - round(exponent)) < 1e-9:
        return f"1e{round(exponent)}"
    return f"{n:,}"


# --- the targets ------------------------------------------------------------------------------------------


def headline(results: dict[str, Any], threads: int) -> list[dict[str, Any]]:
    """Issue 5's targets (float32, ``threads`` threads) with the measured ratios and whether each is met.

    Each row: ``target``, ``goal`` (text), ``measured`` (the ratio, or None when a case or peer was not run),
    ``passed`` (True, False or None), ``detail`` (the times behind the ratio).
    """
    rows: list[dict[str, Any]] = []

    def ratio_row(
        target: str,
        case: dict[str, Any] | None,
        peer: str,
        goal: str,
        ok: Any,
        invert: bool = False,
        extra: Sequence[str] = (),
    ) -> None:
        """measured = peer time / fusedoptim time (or its inverse, fusedoptim / peer, when ``invert``)."""
        measured = None
        detail = "not measured"
        if case is not None and "fusedoptim" in case["peers"] and peer in case["peers"]:
            r = case["peers"][peer]["ratio_to_fusedoptim"]
            measured = 1.0 / r if invert else r
            f = case["peers"]["fusedoptim"]
            parts = [f"fusedoptim {_time(f['median_s'])}"]
            if case["suite"] != "latency" and f.get("gbps"):
                parts[-1] += f" ({f['gbps']:.1f} GB/s"
                parts[-1] += f", {f['fraction_of_triad']:.2f} of triad)" if f.get("fraction_of_triad") else ")"
            parts.append(f"{PEER_LABELS.get(peer, peer)} {_time(case['peers'][peer]['median_s'])}")
            for name in extra:
                if name in case["peers"]:
                    parts.append(f"{PEER_LABELS.get(name, name)} {_time(case['peers'][name]['median_s'])}")
            detail = "; ".join(parts)
        elif case is not None:
            detail = "; ".join(f"{k}: {v}" for k, v in case["skipped"].items()) or "peer not measured"
        rows.append(
            {
                "target": target,
                "goal": goal,
                "measured": measured,
                "passed": None if measured is None or not math.isfinite(measured) else bool(ok(measured)),
                "detail": detail,
            }
        )

    f32 = "float32"
    adam_1e7 = _find(results, "sweep", "adam", f32, threads, 10**7)
    ratio_row(
        "Adam n=1e7: fusedoptim time / native loop time",
        adam_1e7,
        "native",
        "<= 1.10",
        lambda r: r <= 1.10,
        invert=True,
        extra=["stream_triad"],
    )
    ratio_row("Adam n=1e7: torch fused time / fusedoptim time", adam_1e7, "torch_fused", ">= 1.10", lambda r: r >= 1.10)
    for n in (10**5, 10**6):
        ratio_row(
            f"Adam n={_size(n)}: torch fused time / fusedoptim time",
            _find(results, "sweep", "adam", f32, threads, n),
            "torch_fused",
            ">= 2.0",
            lambda r: r >= 2.0,
        )
    latency = _find(results, "latency", "adam", f32, threads)
    ratio_row(
        "Adam step on one 1000-element array / one np.add(a, b, out=a)",
        latency,
        "numpy_ufunc",
        "<= 4.0",
        lambda r: r <= 4.0,
        invert=True,
        extra=["fusedoptim_functional", "torch_fused", "torch_forloop"],
    )
    resnet = _find(results, "resnet50", "adam", f32, threads)
    ratio_row(
        "ResNet-50 (161 arrays, 25.6M) Adam: fusedoptim / native loop on one flat buffer",
        resnet,
        "native",
        "<= 1.20",
        lambda r: r <= 1.20,
        invert=True,
        extra=["native_per_array"],
    )
    ratio_row(
        "ResNet-50 (161 arrays) Adam: torch fused / fusedoptim, same list",
        resnet,
        "torch_fused",
        "> 1.0",
        lambda r: r > 1.0,
        extra=["torch_foreach"],
    )
    sgd_1e7 = _find(results, "sweep", "sgd", f32, threads, 10**7)
    ratio_row(
        "SGD momentum n=1e7: fusedoptim time / native loop time",
        sgd_1e7,
        "native",
        "<= 1.10",
        lambda r: r <= 1.10,
        invert=True,
        extra=["stream_triad"],
    )
    ratio_row(
        "SGD momentum n=1e7: torch fused time / fusedoptim time", sgd_1e7, "torch_fused", ">= 1.10", lambda r: r >= 1.10
    )
    ratio_row(
        "Adam n=1e6: textbook NumPy Adam time / fusedoptim time",
        _find(results, "sweep", "adam", f32, threads, 10**6),
        "numpy_naive",
        ">= 20",
        lambda r: r >= 20,
        extra=["reference", "numpy_inplace"],
    )
    return rows


def _headline_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| target | goal | measured | result | times (median per step) |", "|---|---|---|---|---|"]
    for row in rows:
        result = {True: "**pass**", False: "**miss**", None: "not measured"}[row["passed"]]
        lines.append(f"| {row['target']} | {row['goal']} | {_ratio(row['measured'])} | {result} | {row['detail']} |")
    return lines


# --- Markdown -----------------------------------------------------------------------------------------------------


def _present_peers(cases: Sequence[dict[str, Any]]) -> list[str]:
    names = {name for case in cases for name in case["peers"]}
    return [name for name in PEER_ORDER if name in names]


def _sweep_table(cases: list[dict[str, Any]]) -> list[str]:
    peers = [p for p in _present_peers(cases) if p != "fusedoptim"]
    header = ["n", "fusedoptim", "GB/s", "of triad"] + [PEER_LABELS.get(p, p) for p in peers]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for case in sorted(cases, key=lambda c: c["elements"]):
        label = _size(case["elements"]) if case["arrays"] == 1 else f"{case['arrays']} arrays, {case['elements']:,}"
        f = case["peers"].get("fusedoptim")
        if f is None:
            lines.append(f"| {label} | not measured |" + " |" * (len(header) - 2))
            continue
        cells = [
            label,
            _time(f["median_s"]),
            f"{f['gbps']:.1f}",
            f"{f['fraction_of_triad']:.2f}" if f.get("fraction_of_triad") else "-",
        ]
        for p in peers:
            cells.append(_ratio(case["peers"][p]["ratio_to_fusedoptim"]) if p in case["peers"] else "")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _bandwidth_table(results: dict[str, Any]) -> list[str]:
    lines = ["| dtype | threads | elements | fusedoptim stream_triad | native triad |", "|---|---|---|---|---|"]
    for b in results["bandwidth"]:
        if "gbps" not in b:
            lines.append(f"| {b['dtype']} | {b['threads']} | {b['elements']:,} | {b.get('skipped', '-')} | |")
            continue
        native = f"{b['native_triad']['gbps']:.1f} GB/s" if "native_triad" in b else "-"
        lines.append(f"| {b['dtype']} | {b['threads']} | {b['elements']:,} | {b['gbps']:.1f} GB/s | {native} |")
    return lines


def _latency_table(results: dict[str, Any]) -> list[str]:
    cases = [c for c in results["cases"] if c["suite"] == "latency"]
    if not cases:
        return []
    peers = _present_peers(cases)
    header = ["dtype", "threads"] + [PEER_LABELS.get(p, p) for p in peers] + ["fusedoptim / np.add"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for case in cases:
        cells = [case["dtype"], str(case["threads"])]
        cells += [_time(case["peers"][p]["median_s"]) if p in case["peers"] else "" for p in peers]
        ufunc = case["peers"].get("numpy_ufunc")
        cells.append(_ratio(1.0 / ufunc["ratio_to_fusedoptim"]) if ufunc and "fusedoptim" in case["peers"] else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _groups(results: dict[str, Any]) -> list[tuple[str, int]]:
    seen: list[tuple[str, int]] = []
    for case in results["cases"]:
        key = (case["dtype"], case["threads"])
        if key not in seen:
            seen.append(key)
    return seen


def _overview_table(results: dict[str, Any], dtype: str, threads: int) -> list[str]:
    """fusedoptim's GB/s for every optimizer and size, with its speed-up over torch's for-loop and the reference."""
    cases = [c for c in results["cases"] if c["suite"] == "sweep" and c["dtype"] == dtype and c["threads"] == threads]
    sizes = sorted({c["elements"] for c in cases})
    optimizers = list(dict.fromkeys(c["optimizer"] for c in cases))
    header = ["optimizer"] + [_size(n) for n in sizes]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in optimizers:
        cells = [next(c["label"] for c in cases if c["optimizer"] == name)]
        for n in sizes:
            case = next((c for c in cases if c["optimizer"] == name and c["elements"] == n), None)
            f = case["peers"].get("fusedoptim") if case else None
            if case is None or f is None:
                cells.append("-")
                continue
            text = f"{f['gbps']:.1f} GB/s"
            vs = [
                f"{_ratio(case['peers'][p]['ratio_to_fusedoptim'])} {tag}"
                for p, tag in (("torch_forloop", "torch"), ("reference", "ref"))
                if p in case["peers"]
            ]
            cells.append(text + (" (" + ", ".join(vs) + ")" if vs else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _skipped_lines(results: dict[str, Any]) -> list[str]:
    reasons: dict[str, set[str]] = {}
    for case in results["cases"]:
        for peer, why in case["skipped"].items():
            reasons.setdefault(f"{peer}: {why}", set()).add(case["optimizer"])
    return [f"- {text} ({', '.join(sorted(opts))})" for text, opts in sorted(reasons.items())]


def markdown(results: dict[str, Any], *, detail: bool = True) -> str:
    """The report: targets first, then bandwidth, then the tables (all of them when ``detail``, else the
    float32 sweeps of Adam and SGD at the largest thread count, the many-array and latency cases)."""
    m = results["machine"]
    threads = results["headline_threads"]
    lines = [
        "# fusedoptim benchmark",
        "",
        (
            f"`{m['command']}` on {m['date']}: {m['cpu_model']}, {m['usable_cpus']} CPUs, "
            f"fusedoptim {m['fusedoptim']['version']} ({m['fusedoptim']['simd_level']}), NumPy {m['numpy']}, "
            f"torch {m['torch'] or 'not used'}. Load average (1 min) {_load(m)}."
        ),
        "",
        f"## Targets (issue 5; float32, {threads} threads, ratios from this run)",
        "",
        *_headline_table(results["headline"]),
        "",
        (
            "Ratios are medians of per-round ratios (each peer's time over fusedoptim's in the same round). "
            "fusedoptim is the optimizer class's `opt.step(grads)`."
        ),
        "",
        "## Memory bandwidth (STREAM triad, same run, same threads)",
        "",
        *_bandwidth_table(results),
        "",
        (
            "Effective GB/s below counts each optimizer's unavoidable traffic "
            "(Adam 28 bytes per float32 element: reads p, g, m, v, writes p, m, v; SGD with momentum 20; float64 "
            "double); `of triad` divides it by the triad's GB/s above. A cell `1.35x` is that implementation's time "
            "over fusedoptim's (above 1: fusedoptim faster)."
        ),
        "",
    ]
    sweep_groups = _groups({"cases": [c for c in results["cases"] if c["suite"] == "sweep"]})
    shown = sweep_groups if detail else [g for g in sweep_groups if g == ("float32", threads)]
    optimizers = list(dict.fromkeys(c["optimizer"] for c in results["cases"] if c["suite"] == "sweep"))
    if not detail:
        optimizers = [o for o in optimizers if o in ("adam", "sgd")]
    for dtype, t in shown:
        for name in optimizers:
            cases = [
                c
                for c in results["cases"]
                if c["suite"] == "sweep" and c["optimizer"] == name and c["dtype"] == dtype and c["threads"] == t
            ]
            if cases:
                lines += [
                    f"## {cases[0]['label']}, {dtype}, {t} thread{'s' if t > 1 else ''}",
                    "",
                    *_sweep_table(cases),
                    "",
                ]
    many = [c for c in results["cases"] if c["suite"] in ("resnet50", "many4096")]
    if not detail:
        many = [c for c in many if c["dtype"] == "float32" and c["threads"] == threads]
    if many:
        lines += ["## Many arrays (ResNet-50's 161 parameter shapes; 1000 arrays of 4096)", ""]
        for dtype, t in _groups({"cases": many}):
            for name in dict.fromkeys(c["optimizer"] for c in many):
                cases = [c for c in many if c["optimizer"] == name and c["dtype"] == dtype and c["threads"] == t]
                if cases:
                    lines += [
                        f"### {cases[0]['label']}, {dtype}, {t} thread{'s' if t > 1 else ''}",
                        "",
                        *_sweep_table(cases),
                        "",
                    ]
        lines += [
            (
                "`native loop` runs over one flat buffer of the same total size; `native per array` calls it "
                "once per array."
            ),
            "",
        ]
    latency = _latency_table(results)
    if latency:
        lines += ["## Latency: one Adam step on a single 1000-element array", "", *latency, ""]
    if detail:
        for dtype, t in sweep_groups:
            lines += [
                (
                    f"## Every optimizer, fusedoptim GB/s ({dtype}, {t} thread{'s' if t > 1 else ''}; "
                    "in brackets the speed-up over torch's for-loop and the reference)"
                ),
                "",
                *_overview_table(results, dtype, t),
                "",
            ]
        skipped = _skipped_lines(results)
        if skipped:
            lines += ["## Not measured", "", *skipped, ""]
    if results.get("notes"):
        lines += ["## Notes", "", *[f"- {note}" for note in results["notes"]], ""]
    return "\n".join(lines)


def _load(m: dict[str, Any]) -> str:
    start, end = m.get("loadavg_start"), m.get("loadavg_end")
    if not start:
        return "unknown"
    return (
        f"{start[0]:.1f} at the start and {end[0]:.1f} at the end of the run" if end else f"{start[0]:.1f} at the start"
    )


# --- JSON ----------------------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """NaN and infinities as null, so the file is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def write_json(results: dict[str, Any], path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(_plain(results), f, indent=1, allow_nan=False)
        f.write("\n")


# --- plots ---------------------------------------------------------------------------------------------------------

_STYLE: dict[str, dict[str, Any]] = {
    "fusedoptim": dict(color="C3", linewidth=2.6, marker="o", zorder=10),
    "fusedoptim_functional": dict(color="C1", linestyle="--", marker=".", zorder=9),
    "native": dict(color="k", linestyle="-", marker="s", markersize=4),
    "native_per_array": dict(color="0.4", linestyle="--", marker="s", markersize=4),
    "torch_fused": dict(color="C0", marker="^"),
    "torch_foreach": dict(color="C9", marker="v"),
    "torch_forloop": dict(color="C2", marker="<"),
    "numpy_inplace": dict(color="C4", marker="d"),
    "numpy_naive": dict(color="C5", marker="x"),
    "reference": dict(color="C6", marker="+"),
    "stream_triad": dict(color="0.55", linestyle=":", marker="."),
}


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _sweep_axes(ax: Any, cases: list[dict[str, Any]], triad: float | None, title: str) -> None:
    for peer in _present_peers(cases):
        points = sorted(
            (c["elements"], c["peers"][peer]["gbps"]) for c in cases if peer in c["peers"] and c["peers"][peer]["gbps"]
        )
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, label=PEER_LABELS.get(peer, peer), **_STYLE.get(peer, {}))
    if triad:
        ax.axhline(triad, color="0.3", linestyle="-.", linewidth=1, label="DRAM triad")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("elements")
    ax.set_ylabel("effective GB/s")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)


def _triad(results: dict[str, Any], dtype: str, threads: int) -> float | None:
    return next((b.get("gbps") for b in results["bandwidth"] if b["dtype"] == dtype and b["threads"] == threads), None)


def _many_axes(ax: Any, cases: list[dict[str, Any]], title: str) -> None:
    names = _present_peers(cases)
    suites = [c["suite"] for c in cases]
    width = 0.8 / max(1, len(suites))
    for k, case in enumerate(cases):
        values = [case["peers"][p]["gbps"] if p in case["peers"] else 0.0 for p in names]
        positions = [i + (k - (len(suites) - 1) / 2) * width for i in range(len(names))]
        label = "ResNet-50 (161 arrays)" if case["suite"] == "resnet50" else "1000 x 4096"
        ax.bar(positions, values, width=width, label=label, color=f"C{k}")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([PEER_LABELS.get(p, p) for p in names], rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("effective GB/s")
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)


def write_plots(results: dict[str, Any], directory: str) -> list[str]:
    """``sweep_<optimizer>.png`` (a panel per dtype and thread count) and ``headline.png`` (float32 at the
    headline thread count: Adam and SGD sweeps, the many-array cases). Returns the paths written; none when
    matplotlib is missing."""
    plt = _pyplot()
    if plt is None:
        return []
    written = []
    sweep = [c for c in results["cases"] if c["suite"] == "sweep"]
    groups = _groups({"cases": sweep})
    dtypes = list(dict.fromkeys(d for d, _ in groups))
    threads = list(dict.fromkeys(t for _, t in groups))
    for name in dict.fromkeys(c["optimizer"] for c in sweep):
        cases = [c for c in sweep if c["optimizer"] == name]
        if len({c["elements"] for c in cases}) < 2:
            continue
        legend_rows = math.ceil((len(_present_peers(cases)) + 1) / 6)
        height = 4.0 * len(dtypes) + 0.3 * legend_rows + 0.4
        fig, axes = plt.subplots(len(dtypes), len(threads), figsize=(6.2 * len(threads), height), squeeze=False)
        for i, dtype in enumerate(dtypes):
            for j, t in enumerate(threads):
                group = [c for c in cases if c["dtype"] == dtype and c["threads"] == t]
                _sweep_axes(
                    axes[i][j],
                    group,
                    _triad(results, dtype, t),
                    f"{cases[0]['label']}, {dtype}, {t} thread{'s' if t > 1 else ''}",
                )
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=8)
        # Fixed margins in inches (tight_layout costs seconds per figure): the legend's rows, then the x label.
        fig.subplots_adjust(
            left=0.07,
            right=0.98,
            top=1 - 0.35 / height,
            bottom=(0.3 * math.ceil(len(labels) / 6) + 0.65) / height,
            hspace=0.35,
            wspace=0.18,
        )
        path = os.path.join(directory, f"sweep_{name}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    t = results["headline_threads"]
    panels = []
    for name in ("adam", "sgd"):
        cases = [c for c in sweep if c["optimizer"] == name and c["dtype"] == "float32" and c["threads"] == t]
        if len(cases) >= 2:
            panels.append(("sweep", name, cases))
    many = [
        c
        for c in results["cases"]
        if c["suite"] in ("resnet50", "many4096")
        and c["optimizer"] == "adam"
        and c["dtype"] == "float32"
        and c["threads"] == t
    ]
    if many:
        panels.append(("many", "adam", many))
    if panels:
        fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 5.2), squeeze=False)
        legend: dict[str, Any] = {}
        for ax, (kind, _name, cases) in zip(axes[0], panels):
            label = cases[0]["label"]
            if kind == "sweep":
                _sweep_axes(ax, cases, _triad(results, "float32", t), f"{label}, float32, {t} threads")
                for handle, text in zip(*ax.get_legend_handles_labels()):
                    legend.setdefault(text, handle)
            else:
                _many_axes(ax, cases, f"{label} on many arrays, float32, {t} threads")
        if legend:
            fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=min(7, len(legend)), fontsize=8)
        fig.suptitle(
            f"fusedoptim {results['machine']['fusedoptim']['version']} on "
            f"{results['machine']['cpu_model']} ({results['machine']['date'][:10]}): effective GB/s, "
            "higher is faster",
            fontsize=10,
        )
        fig.subplots_adjust(left=0.05, right=0.99, top=0.9, bottom=0.24 if len(legend) > 7 else 0.2, wspace=0.22)
        path = os.path.join(directory, "headline.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def write_outputs(results: dict[str, Any], directory: str, *, plots: bool = True) -> dict[str, Any]:
    """Writes ``bench.json``, ``bench.md`` (every table), ``summary.md`` (targets and the main tables) and, when
    ``plots`` and matplotlib is installed, the PNGs. Returns the paths, by kind."""
    os.makedirs(directory, exist_ok=True)
    paths: dict[str, Any] = {
        "json": os.path.join(directory, "bench.json"),
        "markdown": os.path.join(directory, "bench.md"),
        "summary": os.path.join(directory, "summary.md"),
        "plots": [],
    }
    write_json(results, paths["json"])
    with open(paths["markdown"], "w", encoding="utf-8") as f:
        f.write(markdown(results, detail=True))
    with open(paths["summary"], "w", encoding="utf-8") as f:
        f.write(markdown(results, detail=False))
    if plots:
        paths["plots"] = write_plots(results, directory)
    return paths

"""Distributed benchmark: step time and bytes communicated per step of DataParallel and ZeRO-1 (Adam, float32,
a ParamArena), and the bandwidth of the collectives they use, for 1 and 2 MPI ranks.

    python benchmarks/distributed.py            # launches itself under mpiexec -n 1 and -n 2, writes
                                                # benchmarks/distributed_latest.{json,md}
    python benchmarks/distributed.py --ranks 1,2,4 --sizes 1e5,1e6,1e7

Each rank uses one OpenMP thread (OMP_NUM_THREADS=1) so the ranks do not oversubscribe the cores. Times are
medians over repeats, each after a barrier; the cost model in benchmarks/DISTRIBUTED.md uses these numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def _median_time(fn: Any, comm: Any, repeats: int) -> float:
    fn()  # warm-up (first-step allocations, page faults)
    times = []
    for _ in range(repeats):
        comm.Barrier()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    # The slowest rank decides a step's time.
    slowest = np.array(times)
    comm.Allreduce(_mpi().IN_PLACE, slowest, op=_mpi().MAX)
    return float(np.median(slowest))


def _mpi() -> Any:
    from mpi4py import MPI

    return MPI


def worker(sizes: list[int]) -> None:
    import fusedoptim
    from fusedoptim import distributed

    MPI = _mpi()
    comm = MPI.COMM_WORLD
    n = comm.Get_size()
    rows = []
    for size in sizes:
        repeats = max(5, min(50, int(2e8 / size)))
        buf = np.ones(size, np.float32)
        out = np.empty(
            distributed.shard_bounds(size, n)[comm.rank][1] - distributed.shard_bounds(size, n)[comm.rank][0],
            np.float32,
        )
        bounds = distributed.shard_bounds(size, n)
        counts, displs = [e - s for s, e in bounds], [s for s, _ in bounds]
        t_allreduce = _median_time(lambda: comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM), comm, repeats)
        t_rs = _median_time(lambda: comm.Reduce_scatter(buf, out, recvcounts=counts, op=MPI.SUM), comm, repeats)
        t_ag = _median_time(lambda: comm.Allgatherv(MPI.IN_PLACE, [buf, counts, displs, MPI.FLOAT]), comm, repeats)

        def arena() -> fusedoptim.ParamArena:
            a = fusedoptim.ParamArena({"w": size}, np.float32)
            a.flat_params[:] = 1.0
            a.flat_grads[:] = 0.01
            return a

        a_plain, a_dp, a_zero = arena(), arena(), arena()
        plain = fusedoptim.Adam(a_plain, lr=1e-3)
        dp = distributed.DataParallel(fusedoptim.Adam(a_dp, lr=1e-3), threads=None)
        zero = distributed.ZeroRedundancyOptimizer(fusedoptim.Adam(a_zero, lr=1e-3), threads=None)
        t_local = _median_time(lambda: plain.step(a_plain.grads), comm, repeats)
        t_dp = _median_time(lambda: dp.step(a_dp.grads), comm, repeats)
        t_zero = _median_time(lambda: zero.step(a_zero.grads), comm, repeats)
        # The ZeRO step's compute alone: its shard optimizer on the rank's slice.
        t_zero_compute = _median_time(lambda: zero.shard_optimizer.step(zero._piece_grads), comm, repeats)
        nbytes = buf.nbytes
        ring = (n - 1) / n
        rows.append(
            {
                "ranks": n,
                "elements": size,
                "bytes": nbytes,
                "repeats": repeats,
                "allreduce_s": t_allreduce,
                "reduce_scatter_s": t_rs,
                "allgather_s": t_ag,
                # Bus bandwidth (as nccl-tests): what each rank's link carries under a ring algorithm, per second.
                "allreduce_busbw_GBps": 2 * ring * nbytes / t_allreduce / 1e9 if n > 1 else None,
                "reduce_scatter_busbw_GBps": ring * nbytes / t_rs / 1e9 if n > 1 else None,
                "allgather_busbw_GBps": ring * nbytes / t_ag / 1e9 if n > 1 else None,
                "step_local_s": t_local,
                "step_dp_s": t_dp,
                "step_zero_s": t_zero,
                "step_zero_compute_s": t_zero_compute,
                "dp_bytes_to_collectives": dp.bytes_per_step,
                "zero_bytes_to_collectives": zero.bytes_per_step,
                "dp_bytes_on_wire_per_rank": 2 * ring * nbytes,
                "zero_bytes_on_wire_per_rank": 2 * ring * nbytes,
                "state_bytes_dp": dp.state_bytes(),
                "state_bytes_zero_max": comm.allreduce(zero.state_bytes(), op=MPI.MAX),
            }
        )
    if comm.rank == 0:
        print(json.dumps(rows), flush=True)


def launch(ranks: list[int], sizes: list[int], out: Path) -> None:
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        sys.exit('benchmarks/distributed.py needs mpiexec: pip install "fusedoptim[mpi]"')
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    rows: list[dict[str, Any]] = []
    for n in ranks:
        cmd = [mpiexec, "-n", str(n), sys.executable, __file__, "--worker", "--sizes", ",".join(map(str, sizes))]
        print("running:", " ".join(cmd), flush=True)
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True, timeout=1800)
        rows += json.loads(result.stdout.strip().splitlines()[-1])
    from mpi4py import MPI

    import fusedoptim

    document = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "fusedoptim": fusedoptim.__version__,
            "simd": fusedoptim.simd_level(),
            "mpi": MPI.Get_library_version().splitlines()[0].strip(),
            "omp_threads_per_rank": 1,
        },
        "optimizer": "Adam, float32, one ParamArena",
        "rows": rows,
    }
    out.with_suffix(".json").write_text(json.dumps(document, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(document))
    print(markdown(document))


def markdown(document: dict[str, Any]) -> str:
    m = document["machine"]
    lines = [
        f"# Distributed benchmark ({document['optimizer']})",
        "",
        f"{m['cpu_count']} cores, {m['mpi']}, SIMD {m['simd']}, {m['omp_threads_per_rank']} OpenMP thread per rank; "
        "medians of the slowest rank's times. `python benchmarks/distributed.py` regenerates this file.",
        "",
        "| ranks | elements | local step | DP step | ZeRO-1 step | ZeRO-1 compute | Allreduce | Reduce_scatter | "
        "Allgatherv | bytes to collectives DP / ZeRO | on the wire per rank | state per rank DP / ZeRO |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def ms(s: float) -> str:
        return f"{s * 1e3:.3f} ms"

    def bw(v: Any) -> str:
        return f" ({v:.2f} GB/s)" if v else ""

    for r in document["rows"]:
        lines.append(
            f"| {r['ranks']} | {r['elements']:.0e} | {ms(r['step_local_s'])} | {ms(r['step_dp_s'])} | "
            f"{ms(r['step_zero_s'])} | {ms(r['step_zero_compute_s'])} | {ms(r['allreduce_s'])}{bw(r['allreduce_busbw_GBps'])} | "
            f"{ms(r['reduce_scatter_s'])}{bw(r['reduce_scatter_busbw_GBps'])} | {ms(r['allgather_s'])}{bw(r['allgather_busbw_GBps'])} | "
            f"{r['dp_bytes_to_collectives'] / 1e6:.1f} / {r['zero_bytes_to_collectives'] / 1e6:.1f} MB | "
            f"{r['dp_bytes_on_wire_per_rank'] / 1e6:.1f} MB | "
            f"{r['state_bytes_dp'] / 1e6:.1f} / {r['state_bytes_zero_max'] / 1e6:.1f} MB |"
        )
    lines += [
        "",
        "Bandwidths are bus bandwidths: bytes a ring algorithm moves over each rank's link "
        "(2(N-1)/N S for Allreduce, (N-1)/N S for the others) per second.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", default="1,2", help="rank counts to run (default 1,2)")
    parser.add_argument("--sizes", default="1e5,1e6,1e7", help="parameter counts (default 1e5,1e6,1e7)")
    parser.add_argument("--out", default=str(HERE / "distributed_latest"), help="output path without suffix")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    if args.worker:
        worker(sizes)
    else:
        launch([int(n) for n in args.ranks.split(",")], sizes, Path(args.out))


if __name__ == "__main__":
    main()

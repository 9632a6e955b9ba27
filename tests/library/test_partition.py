"""64-bit indexing of the work split (cpp/include/fusedoptim/parallel.hpp), without allocating the elements.

`_core._partition` and `_core._reduce_blocks` (cpp/bindings/register_testing.cpp) run the kernels' own
plan_threads, split_point, for_each_segment and reduce_blocks on tensors that have sizes and addresses but no
memory, and report which thread got which piece. So sizes beyond 2^31 elements (where an int32 anywhere in the
index arithmetic would wrap) are checked in milliseconds.
"""

from __future__ import annotations

import numpy as np
import pytest

from fusedoptim import _core

LINE = _core._CACHE_LINE_BYTES
BLOCK = _core._REDUCE_BLOCK
DEFAULT_GRAIN = 65536

# 3*2^31 + 7 elements in all, in one tensor and spread over several (each crossing 2^31 somewhere), and one
# tensor of 2^33 + 1; zero-size tensors between them.
LARGE = {
    "3x2^31+7": [3 * 2**31 + 7],
    "2^31,2^31,2^31+7": [2**31, 2**31, 2**31 + 7],
    "mixed": [0, 5, 2**31 - 1, 0, 2**32 + 3, 2**31 - 1],
    "2^33+1": [2**33 + 1],
}


def expected_threads(total: int, num_threads: int, grain: int) -> int:
    """plan_threads' rule: never more than asked, never fewer than `grain` elements each."""
    by_work = total // grain
    return 1 if by_work < 2 or num_threads <= 1 else min(by_work, num_threads)


def check_partition(
    sizes: list[int], num_threads: int, grain: int, itemsize: int, misalign: list[int] | None = None
) -> list[list[tuple[int, int, int]]]:
    misalign = misalign or [0] * len(sizes)
    per_thread = _core._partition(sizes, num_threads, grain, itemsize, misalign)
    offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).tolist()
    total = offsets[-1]
    n = expected_threads(total, num_threads, grain)
    assert len(per_thread) == n

    # Every element of every tensor exactly once, in order: the segments, thread after thread, tile [0, total).
    position = 0
    for segments in per_thread:
        for k, begin, end in segments:
            assert 0 <= begin < end <= sizes[k], (k, begin, end)
            assert offsets[k] + begin == position, (k, begin, end, position)
            position = offsets[k] + end
    assert position == total

    # Each thread starts at its even share (q*t + r*t/n, exact in int64) moved forward by less than a cache line,
    # onto a line of the tensor it starts in unless it starts at that tensor's beginning.
    for t, segments in enumerate(per_thread):
        if t == 0:
            assert not segments or segments[0][1] == 0
            continue
        raw = total // n * t + (total % n) * t // n
        if not segments:  # its share fell entirely before the next line boundary
            continue
        k, begin, _ = segments[0]
        start = offsets[k] + begin
        assert raw <= start < raw + LINE // itemsize, (t, raw, start)
        if begin != 0:
            assert (misalign[k] + begin) * itemsize % LINE == 0, (t, k, begin)
    return per_thread


@pytest.mark.parametrize("sizes", LARGE.values(), ids=LARGE.keys())
@pytest.mark.parametrize("itemsize", [4, 8], ids=["float32", "float64"])
def test_segments_tile_large_totals_on_cache_lines(sizes, itemsize):
    for num_threads in [1, 2, 3, 4]:
        for grain in [1, DEFAULT_GRAIN]:
            per_thread = check_partition(sizes, num_threads, grain, itemsize)
            # Beyond 2^31 elements every thread count gets the threads it asks for, each a fair share.
            assert len(per_thread) == num_threads
            shares = [sum(end - begin for _, begin, end in segments) for segments in per_thread]
            assert max(shares) - min(shares) <= 2 * LINE // itemsize


@pytest.mark.parametrize("itemsize", [4, 8], ids=["float32", "float64"])
def test_segments_of_misaligned_tensors_start_on_cache_lines(itemsize):
    sizes = LARGE["mixed"]
    for shift in range(LINE // itemsize):
        misalign = [(shift + k) % (LINE // itemsize) for k in range(len(sizes))]
        for num_threads in [2, 3, 4]:
            check_partition(sizes, num_threads, 1, itemsize, misalign)


def test_segments_tile_small_tensors_for_every_grain():
    """Sizes around lines and thread counts, cut everywhere a grain of 1 allows, and kept serial by a large one."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        sizes = rng.integers(0, 70, size=rng.integers(1, 6)).tolist()
        itemsize = int(rng.choice([4, 8]))
        misalign = rng.integers(0, LINE // itemsize, size=len(sizes)).tolist()
        for num_threads in [1, 2, 3, 4]:
            for grain in [1, 7, 64, 1 << 40]:
                check_partition(sizes, num_threads, grain, itemsize, misalign)


def test_a_single_thread_gets_everything_in_one_segment_per_tensor():
    sizes = [2**31 + 1, 0, 2**32]
    assert _core._partition(sizes, 1, 1, 4) == [[(0, 0, 2**31 + 1), (2, 0, 2**32)]]
    assert _core._partition(sizes, 4, 2**40, 4) == [[(0, 0, 2**31 + 1), (2, 0, 2**32)]]


def expected_blocks(sizes: list[int]) -> np.ndarray:
    rows = []
    for k, size in enumerate(sizes):
        begin = np.arange(0, size, BLOCK, dtype=np.int64)
        rows.append(np.stack([np.full_like(begin, k), begin, np.minimum(begin + BLOCK, size)], axis=1))
    return np.concatenate(rows) if rows else np.empty((0, 3), np.int64)


REDUCE_SIZES = {**LARGE, "small": [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 0, 3 * BLOCK]}


@pytest.mark.parametrize("sizes", REDUCE_SIZES.values(), ids=REDUCE_SIZES.keys())
def test_reduction_blocks_do_not_depend_on_the_thread_count(sizes):
    """The blocks (fixed 4096-element pieces of each tensor) are the same for any thread count; threads take
    consecutive runs of them in block order, and the combined result covers every element once."""
    expected = expected_blocks(sizes)
    for num_threads in [1, 2, 3, 4]:
        for grain in [1, DEFAULT_GRAIN]:
            per_thread, sums = _core._reduce_blocks(sizes, num_threads, grain)
            n = expected_threads(sum(sizes), num_threads, grain)
            assert len(per_thread) == n
            assert all(a.dtype == np.int64 and a.shape[1:] == (3,) for a in per_thread)
            assert np.array_equal(np.concatenate(per_thread), expected)
            blocks = len(expected)
            assert [len(a) for a in per_thread] == [blocks * (t + 1) // n - blocks * t // n for t in range(n)]
            assert sums == [float(size) for size in sizes]  # exact: every size is below 2^53


def test_partition_arguments_are_checked():
    with pytest.raises(ValueError, match="Invalid number of threads"):
        _core._partition([10], 0, 1, 4)
    with pytest.raises(ValueError, match="Invalid parallel grain"):
        _core._partition([10], 1, 0, 4)
    with pytest.raises(ValueError, match="Invalid itemsize"):
        _core._partition([10], 1, 1, 2)
    with pytest.raises(ValueError, match="Invalid sizes"):
        _core._reduce_blocks([-1], 1, 1)
    with pytest.raises(ValueError, match="Invalid sizes"):
        _core._partition([2**40, 1], 1, 1, 4)
    with pytest.raises(ValueError, match="Invalid misalign"):
        _core._partition([10], 1, 1, 8, [8])
    assert _core._partition([], 2, 1, 4) == [[]]
    per_thread, sums = _core._reduce_blocks([], 2, 1)
    assert [a.shape for a in per_thread] == [(0, 3)] and sums == []

"""keep_freed_memory: freed tensor memory is reused instead of mapped afresh."""

import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent(
    """
    import resource, sys
    import torch
    from climode.training.host_memory import keep_freed_memory

    if sys.argv[1] == "keep":
        assert keep_freed_memory()

    def faults_of_one_step():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        x = torch.ones(16 * 2**20)  # 64 MiB, above glibc's mmap threshold
        y = x * 2.0
        del x, y
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    for _ in range(4):  # warm-up: the heap settles after 1 to 4 steps (measured: glibc places x and y anew)
        faults_of_one_step()
    print(min(faults_of_one_step() for _ in range(8)))
    """
)


def _faults_per_mode(child: str, modes) -> dict[str, int]:
    """Page faults of the child script's measured step, run in a fresh process per allocator mode."""
    out = {}
    for mode in modes:
        proc = subprocess.run([sys.executable, "-c", child, mode], capture_output=True, text=True, check=True)
        out[mode] = int(proc.stdout.strip())
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only")
def test_steps_after_the_first_reuse_their_pages():
    faults = _faults_per_mode(CHILD, ("default", "keep"))
    pages_per_step = 2 * 64 * 2**20 // 4096  # two 64 MiB tensors in 4 KiB pages
    assert faults["default"] > pages_per_step // 2, faults  # default glibc maps and faults every time
    assert faults["keep"] < pages_per_step // 20, faults  # kept memory is reused without faults


RELEASE_CHILD = textwrap.dedent(
    """
    import resource, sys
    import torch
    from climode.training.host_memory import release_large_blocks

    if sys.argv[1] == "release":
        assert release_large_blocks()
    big = torch.ones(32 * 2**20)  # 128 MiB: freeing it raises glibc's dynamic mmap threshold
    del big

    def faults_of_one_step():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        x = torch.ones(3 * 2**20)  # 12 MiB, below the raised threshold, above the 8 MiB of release
        del x
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    for _ in range(4):  # warm-up, as above
        faults_of_one_step()
    print(min(faults_of_one_step() for _ in range(8)))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only")
def test_released_blocks_are_returned_at_once():
    faults = _faults_per_mode(RELEASE_CHILD, ("default", "release"))
    pages = 12 * 2**20 // 4096
    assert faults["default"] < pages // 20, faults  # glibc's raised threshold keeps 12 MiB on the heap
    assert faults["release"] > pages // 2, faults  # released: mapped afresh (and returned) each time

"""Byte-range task locks on a real file: conflicting claims refused, disjoint ones shared, released at death."""

import signal
import subprocess
import sys
import time

import pytest

from climode.batch.lock import LOCK_NAME, StoreBusyError, StoreLock, runs, task_offset


def test_runs_compress_consecutive_bytes():
    assert runs([5, 3, 4, 9, 10, 3]) == [(3, 3), (9, 2)] and runs([]) == []
    assert task_offset("atlantic", 1) == task_offset("atlantic", 0) + 1 > 0
    assert task_offset("gulf", 0) != task_offset("atlantic", 0)


def test_overlapping_claims_are_refused_and_disjoint_ones_share(tmp_path):
    # open-file-description locks: two StoreLocks conflict even inside one process, as two runs would
    first, second = StoreLock(tmp_path), StoreLock(tmp_path)
    try:
        first.claim([("atlantic", 0), ("atlantic", 1), ("gulf", 0)])
        with pytest.raises(StoreBusyError, match="another climode batch is running tasks") as info:
            second.claim([("gulf", 1), ("atlantic", 1)])
        assert "\n" not in str(info.value)
        second.claim([("gulf", 1), ("atlantic", 2)])  # disjoint: fine, and the refused claim left nothing held
        with pytest.raises(StoreBusyError):
            first.claim([("gulf", 1)])
        first.release()
        second.claim([("atlantic", 0)])
    finally:
        first.close()
        second.close()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    code = ("import sys, time; from climode.batch.lock import StoreLock; "
            f"StoreLock(sys.argv[1]).claim([('atlantic', 3)]); print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        lock = StoreLock(tmp_path)
        with pytest.raises(StoreBusyError):
            lock.claim([("atlantic", 3)])
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        deadline = time.time() + 5
        while True:  # the kernel drops the dead process's locks
            try:
                lock.claim([("atlantic", 3)])
                break
            except StoreBusyError:
                assert time.time() < deadline
                time.sleep(0.05)
        lock.close()
        assert (tmp_path / LOCK_NAME).exists()
    finally:
        holder.kill()
        holder.wait()

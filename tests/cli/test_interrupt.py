"""Ctrl-C at any moment of ``climode forecast`` ends with one line and exit code 130, no traceback."""

import signal
import subprocess
import sys
import time


def _start_and_wait_for_climode(args, cwd):
    """Start ``python -X importtime -m climode ...`` and return once climode's own import is under way.

    ``-X importtime`` writes a line as each import finishes; ``climode._version`` finishes inside
    ``climode/__init__``, right after the interrupt handler is installed.  Earlier than that the
    interpreter itself is starting (site, runpy), which no package can guard.
    """
    proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "climode", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "climode._version" in line:
            return proc, seen
    raise AssertionError("climode was never imported: " + "".join(seen[-5:]))


def test_ctrl_c_in_the_first_fraction_of_a_second_is_quiet(checkpoint, tmp_path):
    # the delays land in climode's import, argument parsing, and the lazy imports of xarray and torch
    for extra in (0.0, 0.02, 0.1, 0.3, 0.8):
        proc, seen = _start_and_wait_for_climode(["forecast", "--checkpoint", str(checkpoint), "--output",
                                                  str(tmp_path / "f.nc"), "--device", "cpu"], tmp_path)
        time.sleep(extra)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        err = "".join(seen) + err
        lines = [line for line in err.splitlines() if not line.startswith("import time:")]
        assert "Traceback" not in err, (extra, err[-2000:])
        if proc.returncode == 0:  # a fast machine finished the forecast first
            continue
        # 130, or death by SIGINT after the message (the shell's $? is 130 for both): in about 1 run of 6
        # interrupted 0.5-1 s in, main() prints the line and returns 130, yet the process ends by SIGINT;
        # CPython re-raises SIGINT at exit when it marked a KeyboardInterrupt unhandled (likely one raised
        # inside an extension's import), which climode's handler cannot undo
        assert proc.returncode in (130, -signal.SIGINT) and lines == ["climode: interrupted"], \
            (extra, proc.returncode, lines)
        assert not (tmp_path / "f.nc").exists()

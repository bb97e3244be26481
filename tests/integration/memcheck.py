"""Valgrind's memcheck around the C workers (issue 12): the command a
worker runs under, and the check of its report.  An invalid read or
write, a use of uninitialised memory, a bad free or a definite leak is an
error, and an error is exit status 99 and a count above 0 in the report."""

import os
import re

from feira import ROOT

ERROR_EXIT = 99


def plain(binary):
    """The plain build of a worker binary: under `make test-asan` the
    workers are the ASan build, which valgrind cannot run."""
    return os.path.join(ROOT, "build", "workers", os.path.basename(binary))


def wrapper(report):
    """The command line a worker runs under (notify.Worker's wrapper, or
    before a one-shot binary); the report goes to the file `report`."""
    return ["valgrind", "--tool=memcheck", f"--error-exitcode={ERROR_EXIT}",
            "--leak-check=full", "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite", "--track-fds=no",
            "--num-callers=30", f"--log-file={report}"]


def check(report, code):
    """The worker exited cleanly and memcheck found nothing: no error, no
    block definitely lost."""
    text = report.read_text()
    assert code == 0, f"exit status {code}:\n{text[-6000:]}"
    assert "ERROR SUMMARY: 0 errors" in text, text[-6000:]
    lost = re.search(r"definitely lost: ([\d,]+) bytes", text)
    assert lost is None or lost.group(1) == "0", text[-6000:]
    return text

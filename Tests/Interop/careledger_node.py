"""What the interop tests share: the binary under test, its CLI, and a `careledger up` on a free port."""
import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

BINARY = os.environ.get("CARELEDGER_BIN", os.path.join(os.path.dirname(__file__), "..", "..", ".build", "debug", "careledger"))


def cli(*args):
    """Runs the careledger CLI and answers its output; a failure fails the test with its error output."""
    done = subprocess.run([BINARY, *args], capture_output=True, text=True)
    assert done.returncode == 0, f"careledger {' '.join(args)}: {done.stderr}"
    return done.stdout


@contextlib.contextmanager
def running_node(prefix):
    """`careledger up` in a new temporary directory on a free loopback port: yields (url, data directory);
    the node is stopped and the directory removed afterwards."""
    data = tempfile.mkdtemp(prefix=prefix)
    process = subprocess.Popen([BINARY, "up", "--data", data, "--http", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = None
    deadline = time.time() + 60
    while time.time() < deadline and url is None:
        line = process.stdout.readline()
        if not line:
            break
        match = re.search(r"API:\s+(http://\S+)", line)
        if match:
            url = match.group(1)
    if url is None:
        process.kill()
        pytest.fail("node did not start")
    try:
        yield url, data
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)

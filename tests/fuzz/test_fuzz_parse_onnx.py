"""The parse_onnx fuzz harness runs clean: a bounded run (a fixed number of inputs from the
small seed corpus) and a timed slow run (``OPENGE_FUZZ_SECONDS``, 10 by default). Hour-long
runs with the full seeds (onnx's node test models too) are documented in
docs/parser_limits.md.

A finding (any exception but GeError, a timeout past 20 s, or an allocation past a 4 GB address
space) makes libFuzzer exit non-zero, and its input is written under the test's temporary folder.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
HARNESS = os.path.join(HERE, "fuzz_parse_onnx.py")
#: Address space of the harness (an allocation past it is a MemoryError, reported as a finding
#: unless the parser turns it into a GeError).
ADDRESS_SPACE = 4 << 30

pytest.importorskip("atheris")


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def _fuzz(tmp_path, *flags: str, wall: int) -> str:
    corpus = tmp_path / "corpus"
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    env = dict(os.environ, PYTHONPATH=ROOT, OPENBLAS_NUM_THREADS="1")
    result = subprocess.run(
        [
            sys.executable,
            HARNESS,
            *flags,
            str(corpus),
            "-seed=1",
            "-timeout=20",
            # libFuzzer's RSS limit reads ru_maxrss, which a subprocess inherits from its
            # parent (a pytest worker may have peaked far higher): cap the address space.
            "-rss_limit_mb=0",
            f"-artifact_prefix={artifacts}/",
        ],
        capture_output=True,
        text=True,
        timeout=wall,
        env=env,
        cwd=str(tmp_path),
        preexec_fn=_cap_memory,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert not os.listdir(artifacts), output[-4000:]
    return output


def test_parse_onnx_fuzz_bounded_run(tmp_path):
    output = _fuzz(tmp_path, "-runs=300", wall=300)
    # libFuzzer checks -runs between mutation batches, so it may stop a few runs past 300
    # (how many depends on the coverage the instrumented modules give)
    done = re.search(r"Done (\d+) runs", output)
    assert done is not None and int(done.group(1)) >= 300, output[-2000:]


@pytest.mark.slow
def test_parse_onnx_fuzz_timed_run(tmp_path):
    # CI's bounded form: OPENGE_FUZZ_SECONDS (10 by default, as tests/fuzz/test_fuzz.py);
    # longer campaigns set it (docs/parser_limits.md)
    seconds = int(os.environ.get("OPENGE_FUZZ_SECONDS", "10"))
    output = _fuzz(tmp_path, f"-max_total_time={seconds}", wall=max(600, 10 * seconds))
    assert "Done" in output

"""The acceptance script of the project (`../shared/acceptance/tb_roundtrip.sh`, vendored here) with
the real tb CLI 6.5.5: core and extended suites must pass in full."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import CLIENT_ENV

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).with_name("tb_roundtrip.sh")
SHARED = Path(__file__).parents[3] / "shared" / "acceptance" / "tb_roundtrip.sh"


def roundtrip(compat_bin, compat_server, tmp_path, extended: bool) -> str:
    url, token = compat_server
    env = {
        **os.environ,
        **CLIENT_ENV,
        "TB_BIN": str(compat_bin / "tb"),
        "TB_HOST": url,
        "TB_TOKEN": token,
        "TB_ACC_EXTENDED": "1" if extended else "0",
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "PATH": f"{compat_bin}:{os.environ['PATH']}",
    }
    res = subprocess.run(
        ["bash", str(SCRIPT)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900
    )
    out = res.stdout + res.stderr
    failures = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert res.returncode == 0 and not failures, "\n".join(failures) + "\n" + out[-4000:]
    assert " 0 failed" in out
    return out


def test_core(compat_bin, compat_server, tmp_path):
    out = roundtrip(compat_bin, compat_server, tmp_path, extended=False)
    assert "token create static" in out


def test_extended(compat_bin, compat_server, tmp_path):
    out = roundtrip(compat_bin, compat_server, tmp_path, extended=True)
    assert "extended: pull" in out


@pytest.mark.skipif(not SHARED.exists(), reason="the shared acceptance folder is not next to this checkout")
def test_vendored_script_is_the_shared_one():
    assert SCRIPT.read_bytes() == SHARED.read_bytes(), "copy ../shared/acceptance/tb_roundtrip.sh here"

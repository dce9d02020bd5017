import resource
import subprocess
import sys

import pytest
from PIL import Image

from tests.checks import CHELSEA
from tests.conftest import ROOT


def _limited():
    resource.setrlimit(resource.RLIMIT_AS, (4_000_000_000, 4_000_000_000))


@pytest.mark.process
@pytest.mark.parametrize("make, args, fragment", [
    (lambda d: Image.new("RGB", (60000, 1)).save(d / "thin.png"), ["shapes", "{d}/thin.png"], "above the limit of 89,478,485"),
    (lambda d: (d / "deep.json").write_text("[" * 100_000), ["roi", str(CHELSEA), "--boxes-file", "{d}/deep.json"],
     "JSON nested too deeply"),
    (lambda d: (d / "long.txt").write_bytes(b"z" * (3 << 20)), ["embed", "--file", "{d}/long.txt"],
     "line 1: longer than 1,048,576 bytes; split it, or raise --max-line-bytes N"),
    (lambda d: (d / "huge.csv").write_text("x1,y1,x2,y2\n" + "9" * 5000 + ",1,2,3\n"), ["roi", str(CHELSEA), "--boxes-file", "{d}/huge.csv"],
     "coordinates must be finite numbers; got [inf, 1.0, 2.0, 3.0]"),
])
def test_under_a_4_gb_address_space_bad_input_is_one_line(tmp_path, make, args, fragment):
    make(tmp_path)
    argv = [arg.replace("{d}", str(tmp_path)) for arg in args]
    result = subprocess.run([sys.executable, "-m", "vizcli", *argv], capture_output=True, text=True, cwd=ROOT,
                            preexec_fn=_limited, timeout=300)
    assert result.returncode == 2, result.stderr[-500:]  # bad input, found from declared sizes before memory is spent
    assert "Traceback" not in result.stderr and result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert fragment in result.stderr

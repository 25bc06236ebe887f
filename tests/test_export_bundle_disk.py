"""Publishing an export (export/bundle.py) on a disk that fills up: one message, no traceback, no export."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import PROJECT_ROOT

# Runs in a process of its own: RLIMIT_FSIZE makes any write past `limit` bytes fail as a full disk would (EFBIG).
PUBLISH = r"""
import json, resource, sys
from pathlib import Path
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from datashare.errors import DatashareError
from datashare.export.bundle import ExportManifest, list_files, publish_export

staging, final, limit = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
staging.mkdir()
(staging / "patients.csv").write_text("a,b\n1,2\n" * 200)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    files = list_files(staging)
    manifest = ExportManifest(dataset={"name": "patients"}, policy={}, transforms={}, columns_out=["a", "b"],
                              columns_dropped_by_default=[], rows={}, privacy={}, purpose="p", recipient="r",
                              actor="a", time="t", audit_receipt={}, signer_key_id="SHA256:test", files=files)
    publish_export(staging, final, manifest, Ed25519PrivateKey.generate())
    print(json.dumps({"ok": True}))
except DatashareError as exc:
    print(json.dumps({"ok": False, "type": type(exc).__name__, "message": exc.message, "exit": exc.exit_code}))
"""


# The manifest is written first and is the largest of the export's own files, so a limit below its size fails it;
# SHA256SUMS and the signatures go through the same writer.
@pytest.mark.parametrize("limit, failing", [(40, "manifest.json"), (300, "manifest.json")])
def test_a_full_disk_while_publishing_is_one_clear_error(tmp_path, limit, failing):
    proc = subprocess.run([sys.executable, "-c", PUBLISH, str(tmp_path / "staging"), str(tmp_path / "out"),
                           str(limit)], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    result = json.loads(proc.stdout)
    assert result == {"ok": False, "type": "InputError", "exit": 1, "message": result["message"]}
    assert f"cannot write the export's {failing} (disk full?)" in result["message"]
    assert not (tmp_path / "out").exists()

"""Enrolment files: each site's signing key and the registry (smpc.fl.secagg_enrolment, python -m smpc enrol)."""

import json
import os
import stat
import subprocess
import sys
import warnings

import numpy as np
import pytest

from smpc.fl import secure_aggregate
from smpc.fl.secagg_enrolment import load_registry, load_signing_key, write_enrolment
from smpc.net.certs import SecretFilePermissionWarning


def test_written_keys_and_registry_load_back_and_run_an_aggregation(tmp_path):
    written = write_enrolment(tmp_path / "enrol", 3)
    assert sorted(written) == ["registry.json", "site0.key", "site1.key", "site2.key"]
    if os.name == "posix":
        assert stat.S_IMODE(os.stat(written["site0.key"]).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(written["registry.json"]).st_mode) == 0o644
    with warnings.catch_warnings():
        warnings.simplefilter("error", SecretFilePermissionWarning)
        keys = [load_signing_key(written[f"site{i}.key"]) for i in range(3)]
    registry = load_registry(written["registry.json"])
    total = secure_aggregate([np.ones(4)] * 3, signing_keys=keys, enrolment=registry)
    assert np.allclose(total, 3.0)
    with pytest.raises(FileExistsError, match="already holds registry.json"):
        write_enrolment(tmp_path / "enrol", 3)
    with pytest.raises(ValueError, match="2..100000 sites"):
        write_enrolment(tmp_path / "other", 1)


def write(path, document):
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


@pytest.mark.parametrize("document, match", [
    ("not json", "is not JSON"),
    ({"format": "other", "keys": []}, "is not an smpc-secagg-registry/1 document"),
    ({"format": "smpc-secagg-registry/1", "keys": ["00" * 32]}, "list of 2..100000 keys"),
    ({"format": "smpc-secagg-registry/1", "keys": ["00" * 32, "zz" * 32]}, "key 1 is not 64 lowercase hex"),
    ({"format": "smpc-secagg-registry/1", "keys": ["ab" * 32, "ab" * 32]}, "same verification key"),
])
def test_a_malformed_registry_is_refused_naming_the_file(tmp_path, document, match):
    path = write(tmp_path / "registry.json", document)
    with pytest.raises(ValueError, match=f"registry file .*registry.json.*{match}|{match}"):
        load_registry(path)


def test_bad_key_files_are_refused_without_showing_their_content(tmp_path):
    short = tmp_path / "short.key"
    short.write_text("ab" * 20)
    short.chmod(0o600)
    with pytest.raises(ValueError, match="holds 20 bytes, not 32") as info:
        load_signing_key(short)
    assert "abab" not in str(info.value)
    with pytest.raises(ValueError, match="does not exist"):
        load_signing_key(tmp_path / "missing.key")
    with pytest.raises(ValueError, match="cannot be read"):
        load_registry(tmp_path / "missing.json")


def test_the_enrol_command_writes_the_files_and_refuses_bad_arguments(tmp_path):
    done = subprocess.run([sys.executable, "-m", "smpc", "enrol", "--sites", "2", "--out", str(tmp_path / "e")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "wrote 2 signing keys" in done.stdout
    assert load_registry(tmp_path / "e" / "registry.json").keys
    again = subprocess.run([sys.executable, "-m", "smpc", "enrol", "--sites", "2", "--out", str(tmp_path / "e")],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode != 0 and "smpc enrol: " in again.stderr and "already holds" in again.stderr

"""Enrolment files for secure aggregation across real sites: each site's signing key, and the registry.

``python -m smpc enrol --sites N --out DIR`` (or :func:`write_enrolment`) writes ``site<i>.key`` (site i's
Ed25519 signing key, 32 bytes in hex, mode 0600: it goes to site i alone) and ``registry.json`` (every
site's verification key, public: every site and the server get the same copy, out of band). A site's
ClientApp signs with its key and checks its neighbours' keys against its own copy of the registry
(:mod:`smpc.fl.secagg_identity`), so the server cannot substitute keys. :func:`load_signing_key` and
:func:`load_registry` read them back, refusing anything malformed with an error naming the file.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from smpc.fl.secagg_identity import SIGNING_KEY_BYTES, VERIFY_KEY_BYTES, Enrolment, enrol
from smpc.net.certs import PRIVATE_MODE, PUBLIC_MODE, create_file, load_secret

REGISTRY_FILE = "registry.json"
REGISTRY_FORMAT = "smpc-secagg-registry/1"
MAX_SITES = 100_000
_MAX_REGISTRY_BYTES = 128 * MAX_SITES
_HEX_KEY = re.compile(r"[0-9a-f]{%d}" % (2 * VERIFY_KEY_BYTES))


def key_file(index: int) -> str:
    return f"site{index}.key"


def write_enrolment(out_dir: str | os.PathLike[str], sites: int) -> dict[str, Path]:
    """Fresh signing keys for ``sites`` sites and their registry, written into ``out_dir`` (created with mode
    0700; refused if it holds any of these files already). Returns the paths written, by file name."""
    if isinstance(sites, bool) or not isinstance(sites, int) or not 2 <= sites <= MAX_SITES:
        raise ValueError(f"an enrolment needs 2..{MAX_SITES} sites, not {sites!r}")
    out = Path(out_dir)
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    names = [REGISTRY_FILE] + [key_file(i) for i in range(sites)]
    taken = [name for name in names if (out / name).exists() or (out / name).is_symlink()]
    if taken:
        raise FileExistsError(f"{out} already holds {taken[0]}: enrol into an empty folder")
    keys, registry = enrol(sites)
    written = {}
    for i, key in enumerate(keys):
        written[key_file(i)] = out / key_file(i)
        create_file(out / key_file(i), key.hex().encode("ascii") + b"\n", PRIVATE_MODE)
    document = {"format": REGISTRY_FORMAT, "keys": [k.hex() for k in registry.keys]}
    written[REGISTRY_FILE] = out / REGISTRY_FILE
    create_file(out / REGISTRY_FILE, (json.dumps(document, indent=1) + "\n").encode("ascii"), PUBLIC_MODE)
    return written


def load_signing_key(path: str | os.PathLike[str]) -> bytes:
    """A site's 32-byte signing key from its hex file (``ValueError`` naming the file, never the content;
    a warning if others may read it)."""
    key = load_secret(path)
    if len(key) != SIGNING_KEY_BYTES:
        raise ValueError(f"signing key file {path} holds {len(key)} bytes, not {SIGNING_KEY_BYTES}")
    return key


def load_registry(path: str | os.PathLike[str]) -> Enrolment:
    """The registry of verification keys from ``registry.json`` (``ValueError`` naming the file and the
    problem: not JSON, another format, a key that is not 64 hex digits, a key listed twice)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(_MAX_REGISTRY_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"registry file {path} cannot be read: {exc.strerror}") from None
    if len(raw) > _MAX_REGISTRY_BYTES:
        raise ValueError(f"registry file {path} is larger than {_MAX_REGISTRY_BYTES} bytes")
    try:
        document = json.loads(raw.decode("ascii"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"registry file {path} is not JSON") from None
    if not isinstance(document, dict) or document.get("format") != REGISTRY_FORMAT:
        raise ValueError(f"registry file {path} is not an {REGISTRY_FORMAT} document")
    keys = document.get("keys")
    if not isinstance(keys, list) or not 2 <= len(keys) <= MAX_SITES:
        raise ValueError(f"registry file {path} needs a list of 2..{MAX_SITES} keys")
    for i, key in enumerate(keys):
        if not isinstance(key, str) or not _HEX_KEY.fullmatch(key):
            raise ValueError(f"registry file {path}: key {i} is not {2 * VERIFY_KEY_BYTES} lowercase hex digits")
    try:
        return Enrolment(tuple(bytes.fromhex(k) for k in keys))
    except ValueError as exc:
        raise ValueError(f"registry file {path}: {exc}") from None

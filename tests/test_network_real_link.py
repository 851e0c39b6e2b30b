"""The network model against a real shaped link: two parties in their own network namespaces, joined by a veth pair
whose both ends are shaped by the kernel (``tc``: ``netem`` for delay and rate where the kernel has it, else ``tbf``
for the rate alone), run over TCP by ``python -m smpc party``; the same program under ``smpc.run(...,
network=smpc.Network(...))`` must take about as long.

Needs root, ``ip`` and ``tc``; skipped, naming what is missing, where namespaces or shaping are not permitted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import smpc
from smpc.net.network import Network

RATE_MBIT = 200
DELAY_MS = 10  # one way, with netem only
ELEMENTS = 1_000_000  # an opening moves 8 MB each way: 0.32 s at 200 Mbit/s

PROGRAM = f"""
import time
import numpy as np

def main(party):
    x = party.protocol.from_public(party, np.ones({ELEMENTS}))  # shared without a message
    x[:1].reveal()  # both parties leave this round together
    start = time.perf_counter()
    for _ in range(3):
        x.reveal()
    return time.perf_counter() - start
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


def _tc(namespace: str, device: str, *qdisc: str) -> None:
    subprocess.run(["tc", "-n", namespace, "qdisc", "add", "dev", device, "root", *qdisc], check=True,
                   capture_output=True, text=True, timeout=30)


@pytest.fixture
def shaped_link():
    """Namespaces A (10.77.0.1) and B (10.77.0.2) joined by a shaped veth pair; yields the link's one-way delay in
    ms (0 where only the rate could be shaped)."""
    if shutil.which("ip") is None or shutil.which("tc") is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("shaping a real link needs root and the ip and tc commands")
    tag = f"{os.getpid() % 100000}"
    a, b = f"smpcA{tag}", f"smpcB{tag}"
    try:
        _ip("netns", "add", a)
        _ip("netns", "add", b)
        _ip("link", "add", f"va{tag}", "type", "veth", "peer", "name", f"vb{tag}")
        for namespace, device, address in ((a, f"va{tag}", "10.77.0.1/24"), (b, f"vb{tag}", "10.77.0.2/24")):
            _ip("link", "set", device, "netns", namespace)
            _ip("-n", namespace, "addr", "add", address, "dev", device)
            _ip("-n", namespace, "link", "set", device, "up")
            _ip("-n", namespace, "link", "set", "lo", "up")
    except subprocess.CalledProcessError as exc:
        _remove(a, b)
        pytest.skip(f"network namespaces are not permitted here: {exc.stderr.strip()}")
    delay = DELAY_MS
    try:
        for namespace, device in ((a, f"va{tag}"), (b, f"vb{tag}")):
            try:
                _tc(namespace, device, "netem", "delay", f"{DELAY_MS}ms", "rate", f"{RATE_MBIT}mbit", "limit", "100000")
            except subprocess.CalledProcessError:  # no netem in this kernel: shape the rate alone
                delay = 0
                _tc(namespace, device, "tbf", "rate", f"{RATE_MBIT}mbit", "burst", "256kb", "latency", "500ms")
    except subprocess.CalledProcessError as exc:
        _remove(a, b)
        pytest.skip(f"tc cannot shape a link here: {exc.stderr.strip()}")
    try:
        yield a, b, delay
    finally:
        _remove(a, b)


def _remove(*namespaces: str) -> None:
    for namespace in namespaces:
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=30)


def _real_seconds(tmp_path, a: str, b: str) -> float:
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent(PROGRAM))
    peers = "10.77.0.1:47101,10.77.0.2:47102"
    common = ["--peers", peers, "--dealer", "10.77.0.1:47103", "--insecure-no-tls", "--session", "link",
              "--timeout", "60"]
    commands = [["ip", "netns", "exec", a, sys.executable, "-m", "smpc", "party", "--rank", "0", *common,
                 f"{script}:main"],
                ["ip", "netns", "exec", b, sys.executable, "-m", "smpc", "party", "--rank", "1", *common,
                 f"{script}:main"],
                ["ip", "netns", "exec", a, sys.executable, "-m", "smpc", "dealer", *common]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    processes = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                 for c in commands]
    outputs = [p.communicate(timeout=180) for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    return max(float(out.strip().splitlines()[-1]) for out, _ in outputs[:2])


def _modelled_seconds(delay_ms: float) -> float:
    namespace: dict = {}
    exec(textwrap.dedent(PROGRAM), namespace)  # the same program, under the model
    network = Network(rtt_ms=2 * delay_ms, bandwidth_mbps=RATE_MBIT)
    return max(smpc.run(namespace["main"], parties=2, network=network))


def test_the_model_agrees_with_a_real_shaped_link(tmp_path, shaped_link):
    a, b, delay = shaped_link
    real = _real_seconds(tmp_path, a, b)
    modelled = _modelled_seconds(delay)
    # three openings of 8 MB each way: 3 x (one-way delay + 8 MB at the rate)
    floor = 3 * (delay / 1000 + 8 * ELEMENTS * 8 / (RATE_MBIT * 1e6))
    assert modelled >= floor * 0.95
    assert abs(real - modelled) <= 0.25 * modelled + 0.05, (real, modelled, floor)
    assert np.isfinite(real)
    print(f"real {real:.3f} s, modelled {modelled:.3f} s, floor {floor:.3f} s, one-way delay {delay} ms")

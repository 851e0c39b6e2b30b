"""A real Flower deployment on loopback: a TLS SuperLink, three SuperNodes each loading its own site's file, key
and registry, and ``flwr run`` of the project smpc writes (smpc.fl.flower.deploy, smpc.fl.flower.project)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flwr")
# Flower's commands, and the flwr-serverapp / flwr-clientapp processes they start, live beside this Python
BIN = str(Path(sys.executable).parent)
PATH = os.pathsep.join([BIN, os.environ.get("PATH", "")])
if shutil.which("flower-superlink", path=PATH) is None or shutil.which("flwr", path=PATH) is None:
    pytest.skip("Flower's command-line tools are not installed beside this Python", allow_module_level=True)

from sklearn.datasets import load_breast_cancer  # noqa: E402

from smpc import fl  # noqa: E402
from smpc.fl.flower.project import write_project  # noqa: E402
from smpc.fl.secagg_enrolment import write_enrolment  # noqa: E402
from smpc.net.certs import write_deployment  # noqa: E402
from smpc.nn import models  # noqa: E402

COLUMNS = [f"f{i}" for i in range(30)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_csv(path: Path, x, y) -> Path:
    lines = [",".join([*COLUMNS, "label"])]
    lines += [",".join([*(repr(float(v)) for v in row), str(int(t))]) for row, t in zip(x, y)]
    path.write_text("\n".join(lines) + "\n")
    return path


class Federation:
    """The processes of one deployment; every one is stopped at the end."""

    def __init__(self, root: Path):
        self.root, self.processes = root, []
        self.home = root / "flwr"
        self.home.mkdir()
        self.env = {**os.environ, "FLWR_HOME": str(self.home), "PATH": PATH}

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
        command = [shutil.which(args[0], path=PATH) or args[0], *args[1:]]
        process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append((process, log))
        return process

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        for process, _ in self.processes:
            process.terminate()
        for process, log in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()


@pytest.fixture(scope="module")
def superlink(tmp_path_factory):
    """A TLS SuperLink alone (about 3 s): the federation's root, its certificates and its port."""
    root = tmp_path_factory.mktemp("deployment")
    certs = write_deployment(root / "certs", 2, hosts="127.0.0.1")  # party0's certificate serves the SuperLink
    federation = Federation(root)
    port = free_port()
    (federation.home / "config.toml").write_text(
        f'[superlink]\ndefault = "smpc"\n\n[superlink.smpc]\naddress = "127.0.0.1:{port}"\n'
        f'root-certificates = "{certs["ca.pem"]}"\n')
    federation.start("superlink", "flower-superlink", "--port", str(port), "--ssl-ca-certfile", str(certs["ca.pem"]),
                     "--ssl-certfile", str(certs["party0.pem"]), "--ssl-keyfile", str(certs["party0.key"]))
    time.sleep(3)
    try:
        yield federation, certs, port
    finally:
        federation.stop()


@pytest.fixture(scope="module")
def deployment(superlink):
    """Three SuperNodes, each with its own site's file and key, and one ``flwr run`` of the project (about 2
    minutes: only the extended run builds it)."""
    federation, certs, port = superlink
    root = federation.root
    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    parts, test = np.array_split(order[:455], 3), order[455:]
    sites = [write_csv(root / f"hospital_{i}.csv", x[p], y[p]) for i, p in enumerate(parts)]
    test_path = write_csv(root / "test.csv", x[test], y[test])
    enrolment = write_enrolment(root / "enrol", 3)
    app = write_project(root / "app", enrolment["registry.json"], test_path, rounds=1,
                        **{"history-path": str(root / "history.json"), "typical-rows": 150}).parent
    for i, data in enumerate(sites):
        config = (f"site-index={i} data-path='{data}' key-path='{enrolment[f'site{i}.key']}' "
                  f"registry-path='{enrolment['registry.json']}'")
        federation.start(f"supernode{i}", "flower-supernode", "--superlink", f"127.0.0.1:{port}",
                         "--root-certificates", str(certs["ca.pem"]), "--port", str(free_port()),
                         "--node-config", config)
    run = subprocess.run([shutil.which("flwr", path=PATH), "run", str(app), "smpc", "--stream"], env=federation.env,
                         capture_output=True, text=True, timeout=400)
    return federation, run, (x, y, parts, test), certs, port


@pytest.mark.extended  # three real Flower sites over TLS: about 2 minutes
def test_three_sites_train_with_secure_aggregation_over_tls(deployment):
    federation, run, (x, y, parts, test), _, _ = deployment
    history_path = federation.root / "history.json"
    assert history_path.exists(), f"flwr run: {run.stdout[-2000:]} {run.stderr[-2000:]}"
    (record,) = json.loads(history_path.read_text())
    assert record["aborted"] is None and record["participants"] == 3 and record["secagg_exchanges"] == 5
    # the same round in process, on the same sites standardised with the pooled statistics
    train = np.concatenate(parts)
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    data = fl.FederatedDataset.__new__(fl.FederatedDataset)  # the sites as they are, no split of their rows
    data.num_classes, data.partition, data.standardization = 2, "sites", None
    data.clients = [fl.ClientData((x[p] - mean) / std, y[p]) for p in parts]
    data.test = fl.ClientData((x[test] - mean) / std, y[test])
    in_process = fl.FedAvg(lambda: models.logistic_regression(30, rng=0), data, local_epochs=2, lr=0.1,
                           secure=True).fit(1)
    assert abs(record["accuracy"] - in_process.accuracy[-1]) <= 0.02 and record["accuracy"] >= 0.9


@pytest.mark.extended  # reads the log of the deployment's run above
def test_the_sites_rows_and_updates_never_reach_the_superlink_log(deployment):
    federation, *_ = deployment
    text = federation.log("superlink")
    assert "hospital_0.csv" not in text and "site0.key" not in text


def test_a_supernode_without_the_federations_ca_is_refused(superlink, tmp_path):
    federation, certs, port = superlink
    other = write_deployment(tmp_path / "other", 2, hosts="127.0.0.1")
    stranger = federation.start("stranger", "flower-supernode", "--superlink", f"127.0.0.1:{port}",
                                "--root-certificates", str(other["ca.pem"]), "--port", str(free_port()),
                                "--node-config", "site-index=0", "--max-retries", "2")
    try:
        stranger.wait(60)
    except subprocess.TimeoutExpired:
        pytest.fail("a SuperNode that cannot verify the SuperLink kept running")
    text = federation.log("stranger")
    assert stranger.returncode != 0
    assert "SSL/TLS handshake error" in text and "CERTIFICATE_VERIFY_FAILED" in text


@pytest.mark.slow
@pytest.mark.extended  # a killed SuperNode: about a minute
def test_a_site_with_a_broken_file_and_a_supernode_killed_mid_round_are_dropouts(tmp_path):
    """Five sites: site 4's file is broken (its ClientApp fails naming the line and column, so it drops out),
    site 3's SuperNode is killed as the round's secure aggregation starts (the server's exchange times out
    on it). The three others still reach the threshold t = 3 and the round completes with their sum."""
    x, y = load_breast_cancer(return_X_y=True)
    parts = np.array_split(np.random.default_rng(1).permutation(len(y))[:455], 5)
    sites = [write_csv(tmp_path / f"hospital_{i}.csv", x[p], y[p]) for i, p in enumerate(parts)]
    text = sites[4].read_text().split("\n")
    text[2] = "not-a-number" + text[2][text[2].index(","):]
    sites[4].write_text("\n".join(text))
    test_path = write_csv(tmp_path / "test.csv", x[455:], y[455:])
    certs = write_deployment(tmp_path / "certs", 2, hosts="127.0.0.1")
    enrolment = write_enrolment(tmp_path / "enrol", 5)
    app = write_project(tmp_path / "app", enrolment["registry.json"], test_path, rounds=1, standardize=False,
                        timeout=20.0, **{"history-path": str(tmp_path / "history.json")}).parent
    federation = Federation(tmp_path)
    port = free_port()
    (federation.home / "config.toml").write_text(
        f'[superlink]\ndefault = "smpc"\n\n[superlink.smpc]\naddress = "127.0.0.1:{port}"\n'
        f'root-certificates = "{certs["ca.pem"]}"\n')
    try:
        federation.start("superlink", "flower-superlink", "--port", str(port), "--ssl-ca-certfile",
                         str(certs["ca.pem"]), "--ssl-certfile", str(certs["party0.pem"]), "--ssl-keyfile",
                         str(certs["party0.key"]))
        time.sleep(3)
        nodes = []
        for i, data in enumerate(sites):
            config = (f"site-index={i} data-path='{data}' key-path='{enrolment[f'site{i}.key']}' "
                      f"registry-path='{enrolment['registry.json']}'")
            nodes.append(federation.start(f"supernode{i}", "flower-supernode", "--superlink", f"127.0.0.1:{port}",
                                          "--root-certificates", str(certs["ca.pem"]), "--port", str(free_port()),
                                          "--node-config", config))
        run = subprocess.Popen([shutil.which("flwr", path=PATH), "run", str(app), "smpc", "--stream"],
                               env=federation.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while "ROUND round 1 secagg" not in federation.log("supernode3") and time.monotonic() < deadline:
            time.sleep(0.2)
        nodes[3].kill()  # mid-round: its secure aggregation has begun
        run.wait(300)
    finally:
        federation.stop()
    (record,) = json.loads((tmp_path / "history.json").read_text())
    assert record["aborted"] is None and record["summed"] == 3  # (no standardisation here: accuracy is beside it)
    assert "line 3, column f0 is not a finite number" in federation.log("supernode4")

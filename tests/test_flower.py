"""smpc's FedAvg and secure aggregation on Flower's simulation engine (smpc.fl.flower)."""

import numpy as np
import pytest

pytest.importorskip("flwr")  # the test extra installs it; a plain install may not have it

from flwr.app import ConfigRecord, Message, RecordDict  # noqa: E402

from smpc import fl  # noqa: E402
from smpc.fl.flower import frames, run_simulation  # noqa: E402
from smpc.fl.flower.simulation import run_aggregation_simulation  # noqa: E402
from smpc.fl.flower.client import Site, _config  # noqa: E402
from smpc.fl.flower.links import FRAMES, MessageLink  # noqa: E402
from smpc.fl.secagg_errors import MalformedMessageError  # noqa: E402
from smpc.fl.secagg_identity import enrol, new_session  # noqa: E402
from smpc.net.wire import WireFormatError  # noqa: E402
from smpc.nn import models  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return fl.FederatedDataset.from_sklearn("breast_cancer", num_clients=4, partition="iid", seed=2)


def test_simulation_matches_in_process_fedavg_with_secure_aggregation(data):
    options = dict(local_epochs=2, lr=0.1, secure=True, seed=3)
    on_flower = run_simulation(lambda: models.logistic_regression(30, rng=0), data, 4, **options)
    in_process = fl.FedAvg(lambda: models.logistic_regression(30, rng=0), data, **options).fit(4)
    assert len(on_flower) == 4 and all(r["aborted"] is None for r in on_flower.rounds)
    assert abs(on_flower.accuracy[-1] - in_process.accuracy[-1]) <= 0.02
    assert on_flower.accuracy[-1] >= 0.9
    assert all(r["secagg_exchanges"] == 5 for r in on_flower.rounds)  # the five rounds of secure aggregation
    assert on_flower.epsilon == in_process.epsilon == [0.0] * 4


def test_simulation_with_distributed_dp_dropouts_and_sampling_spends_the_same_epsilon(data):
    options = dict(local_epochs=1, lr=0.1, secure=True, sample_rate=0.9, drop_rate_after=0.3, seed=1,
                   dp=fl.DPConfig(clip_norm=1.0, noise_multiplier=1.0, mode="distributed"))
    on_flower = run_simulation(lambda: models.logistic_regression(30, rng=0), data, 3, **options)
    in_process = fl.FedAvg(lambda: models.logistic_regression(30, rng=0), data, **options).fit(3)
    assert np.allclose(on_flower.epsilon, in_process.epsilon) and on_flower.epsilon[-1] > 0
    assert sum(r["dropped_after"] for r in on_flower.rounds) > 0
    assert all(r["aborted"] is None or "fewer than the threshold" in r["aborted"] for r in on_flower.rounds)


def test_dropouts_before_masking_and_plain_aggregation(data):
    secure = run_simulation(lambda: models.logistic_regression(30, rng=0), data, 2, drop_rate_before=0.3, seed=5)
    assert sum(r["dropped_before"] for r in secure.rounds) > 0
    assert all(r["aborted"] is None or "fewer than the threshold" in r["aborted"] for r in secure.rounds)
    plain = run_simulation(lambda: models.logistic_regression(30, rng=0), data, 2, secure=False, seed=5)
    assert plain.accuracy[-1] >= 0.85


def test_aggregation_alone_on_flower_sums_within_the_bound_with_dropouts():
    rng = np.random.default_rng(7)
    updates = [rng.normal(0, 0.1, 50) for _ in range(6)]
    rounds = run_aggregation_simulation(updates, 2, drop_before=(1,), drop_after=(4,))
    expected = np.sum([u for i, u in enumerate(updates) if i != 1], axis=0)
    for result in rounds:
        assert result["included"] == (0, 2, 3, 4, 5) and result["exchanges"] == 5
        assert np.max(np.abs(result["total"] - expected)) <= result["error_bound"]
    with pytest.raises(ValueError, match="distinct clients"):
        run_aggregation_simulation(updates, 1, drop_before=(1,), drop_after=(1,))


def test_bad_arguments_are_refused_before_anything_starts(data):
    with pytest.raises(ValueError, match="sample_rate"):
        run_simulation(lambda: models.logistic_regression(30, rng=0), data, 2, sample_rate=0.0)
    with pytest.raises(ValueError, match="rounds must be a positive integer"):
        run_simulation(lambda: models.logistic_regression(30, rng=0), data, 0)
    with pytest.raises(ValueError, match="distributed DP needs secure=True"):
        run_simulation(lambda: models.logistic_regression(30, rng=0), data, 1, secure=False,
                       dp=fl.DPConfig(clip_norm=1.0, noise_multiplier=1.0, mode="distributed"))


# --- what a site checks in the server's messages ----------------------------------------------------
KEYS, REGISTRY = enrol(4)


def setup(**changes):
    values = {"sites": [2, 0, 3], "client": 1, "session": new_session(), "shape": [5], "threshold": 2,
              "neighbours": -1, "clip": 16.0, "ring_bits": 32, "frac_bits": 20, "drop": ""}
    values.update(changes)
    return ConfigRecord(values)


def test_a_site_builds_the_run_from_its_own_registry():
    site = Site(None, 0, KEYS[0], REGISTRY)
    config, me = _config(setup(), site)
    assert me == 1 and config.n_clients == 3 and config.shape == (5,)
    assert config.enrolment.keys == (REGISTRY.keys[2], REGISTRY.keys[0], REGISTRY.keys[3])


@pytest.mark.parametrize("changes, match", [
    (dict(client=0), "placed this site .* at a position where it is not"),
    (dict(client=7), "placed this site"),
    (dict(sites=[0, 0, 3], client=0), "repeats a site"),
    (dict(sites=[2, 0, 9]), "not in the registry"),
    (dict(session=b"short"), "malformed session"),
    (dict(shape=[0]), "malformed session or shape"),
    (dict(threshold=1), "threshold must be"),
    (dict(frac_bits=40), "frac_bits"),
    (dict(clip=-1.0), "clip"),
    (dict(ring_bits=16), "ring_bits"),
])
def test_a_site_refuses_unusable_parameters_naming_them(changes, match):
    with pytest.raises(MalformedMessageError, match="unusable: .*" + match):
        _config(setup(**changes), Site(None, 0, KEYS[0], REGISTRY))


def test_frames_round_trip_and_garbage_is_refused():
    arrays = [np.arange(3, dtype=np.int64), np.zeros((2, 4), np.uint8), np.ones(5, np.uint32)]
    back = frames.decode(frames.encode(arrays))
    assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(arrays, back))
    good = frames.encode([np.arange(4, dtype=np.uint64)])[frames.FIELD][0]
    for bad, match in [(ConfigRecord({}), "without smpc frames"), (ConfigRecord({"frames": [b"SMPC"]}), "truncated"),
                       (ConfigRecord({"frames": [good[:-1]]}), "announces"),
                       (ConfigRecord({"frames": [b"GET / HTTP/1.1\r\n" + bytes(40)]}), "bad magic"),
                       (ConfigRecord({"frames": [b"x"] * (frames.MAX_FRAMES + 1)}), "at most")]:
        with pytest.raises(WireFormatError, match=match):
            frames.decode(bad)
    message = Message(RecordDict({FRAMES: ConfigRecord({"frames": [b"junk" * 10]})}), 1, "query.smpc_secagg")
    with pytest.raises(MalformedMessageError, match="the server sent a malformed message"):
        MessageLink(message)


def test_the_flower_app_project_is_written_with_the_run_config(tmp_path):
    import subprocess
    import sys

    import tomllib

    (tmp_path / "registry.json").write_text("{}")
    (tmp_path / "test.csv").write_text("a,label\n1,0\n")
    done = subprocess.run([sys.executable, "-m", "smpc", "flower-app", "--out", str(tmp_path / "app"), "--registry",
                           str(tmp_path / "registry.json"), "--test", str(tmp_path / "test.csv"), "--set", "rounds=5",
                           "--set", "standardize=false", "--set", "model=mlp", "--set", 'label=di"ag'],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    project = tomllib.loads((tmp_path / "app" / "pyproject.toml").read_text())
    assert project["tool"]["flwr"]["app"]["components"] == {"serverapp": "smpc.fl.flower.deploy:server_app",
                                                            "clientapp": "smpc.fl.flower.deploy:client_app"}
    config = project["tool"]["flwr"]["app"]["config"]
    assert config["rounds"] == 5 and config["standardize"] is False and config["model"] == "mlp"
    assert config["label"] == 'di"ag' and config["registry-path"] == str(tmp_path / "registry.json")
    again = subprocess.run([sys.executable, "-m", "smpc", "flower-app", "--out", str(tmp_path / "app"), "--registry",
                            "r", "--test", "t", "--set", "Bad Key=1"], capture_output=True, text=True, timeout=120)
    assert again.returncode != 0 and "smpc flower-app: " in again.stderr


def test_a_site_that_fails_mid_round_is_a_dropout_and_the_round_completes(data):
    """Site 3's rows no longer fit the model (as if its process died while training): its ClientApp fails
    in the masked-input round, the server counts it as dropped before masking and sums the other three."""
    broken = fl.FederatedDataset.__new__(fl.FederatedDataset)
    broken.num_classes, broken.partition, broken.standardization = data.num_classes, data.partition, None
    broken.clients = data.clients[:3] + [fl.ClientData(data.clients[3].x[:, :5], data.clients[3].y)]
    broken.test = data.test
    history = run_simulation(lambda: models.logistic_regression(30, rng=0), broken, 2, seed=4)
    assert all(r["aborted"] is None and r["summed"] == 3 for r in history.rounds)
    assert history.accuracy[-1] >= 0.85


def test_the_deployed_run_config_switches_differential_privacy_on():
    from smpc.fl.flower.deploy import dp_from, model_from

    assert dp_from({"rounds": 3}) is None
    config = dp_from({"dp-clip-norm": 1.0, "dp-noise-multiplier": 1.1})
    assert (config.clip_norm, config.noise_multiplier, config.mode, config.delta) == (1.0, 1.1, "distributed", 1e-5)
    assert dp_from({"dp-clip-norm": 2, "dp-noise-multiplier": 1, "dp-mode": "central"}).mode == "central"
    with pytest.raises(ValueError, match="needs both dp-clip-norm and dp-noise-multiplier"):
        dp_from({"dp-clip-norm": 1.0})
    with pytest.raises(ValueError, match="unknown DP mode"):
        dp_from({"dp-clip-norm": 1.0, "dp-noise-multiplier": 1.0, "dp-mode": "local"})
    assert np.shape(model_from({"features": 30})()(np.zeros((2, 30)))) == (2, 1)  # binary: one logit
    assert np.shape(model_from({"features": 30, "model": "mlp", "classes": 3})()(np.zeros((2, 30)))) == (2, 3)
    with pytest.raises(ValueError, match="unknown model"):
        model_from({"features": 30, "model": "resnet"})

"""Each site's own data: files, schema checks and federated standardisation (smpc.fl.sites)."""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from smpc import fl
from smpc.fl import sites as sites_module
from smpc.fl.datasets import FederatedDataset
from smpc.fl.sites import SiteData, check_sites, federated_standardization, load_site

COLUMNS = [f"f{i}" for i in range(30)]


def write_csv(path, x, y, columns=COLUMNS, label="label"):
    lines = [",".join([*columns[:5], label, *columns[5:]])]
    for row, target in zip(x, y):
        cells = [repr(float(v)) for v in row]
        lines.append(",".join([*cells[:5], str(int(target)), *cells[5:]]))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def hospital_files(tmp_path_factory):
    """Breast cancer rows split unevenly over three sites' files: two CSV, one .npz."""
    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(3).permutation(len(y))
    parts = np.split(order, [120, 330])
    folder = tmp_path_factory.mktemp("sites")
    paths = [write_csv(folder / f"{name}.csv", x[part], y[part]) for name, part in zip("ab", parts[:2])]
    np.savez(folder / "c.npz", x=x[parts[2]], y=y[parts[2]], columns=np.array(COLUMNS))
    return [*paths, folder / "c.npz"], x, y, parts


def test_sites_load_their_own_files_and_match(hospital_files):
    paths, x, y, parts = hospital_files
    loaded = [load_site(p) for p in paths]
    for site, part in zip(loaded, parts):
        assert np.allclose(site.x, x[part]) and np.array_equal(site.y, y[part])
        assert site.columns == tuple(COLUMNS)
    assert [s.name for s in loaded] == ["a.csv", "b.csv", "c.npz"]
    assert check_sites(loaded) == 2


def test_standardisation_over_sites_equals_the_pooled_statistics_by_secure_aggregation(hospital_files, monkeypatch):
    paths, *_ = hospital_files
    calls = []
    real = sites_module.secure_aggregate

    def recording(vectors, **kwargs):
        calls.append((len(vectors), kwargs))
        return real(vectors, **kwargs)

    monkeypatch.setattr(sites_module, "secure_aggregate", recording)
    data = FederatedDataset.from_sites(paths, seed=1)
    pooled = np.concatenate([load_site(p).x for p in paths])
    trained = data.standardization
    assert [c[0] for c in calls] == [3, 3] and all(c[1]["ring_bits"] == 64 for c in calls)
    assert "secure aggregation" in trained.how and trained.rows == sum(data.sizes)
    # the training rows are a subset: check against their own pooled statistics, recomputed from the files
    train_rows = np.concatenate([c.x for c in data.clients]) * np.where(trained.std > 0, trained.std, 1) + trained.mean
    assert np.allclose(trained.mean, train_rows.mean(axis=0), rtol=1e-7, atol=1e-6)
    assert np.allclose(trained.std, train_rows.std(axis=0), rtol=1e-7, atol=0)
    assert np.abs(np.concatenate([c.x for c in data.clients]).mean(axis=0)).max() < 1e-8
    assert len(data.test) + sum(data.sizes) == len(pooled) and data.num_clients == 3 and data.partition == "sites"
    clear = FederatedDataset.from_sites(paths, seed=1, secure=False)
    assert np.allclose(clear.standardization.mean, trained.mean, atol=1e-5)
    assert "in the clear" in clear.standardization.how


def test_fedavg_on_the_sites_own_standardised_data_learns(hospital_files):
    from smpc.nn import models

    paths, *_ = hospital_files
    data = FederatedDataset.from_sites(paths, seed=0)
    history = fl.FedAvg(lambda: models.logistic_regression(30), data, local_epochs=2, lr=0.1, secure=True,
                        seed=0).fit(5)
    assert history.accuracy[-1] >= 0.9


def test_federated_standardization_checks_its_bound_and_arguments():
    sites = [np.ones((3, 2)), np.full((2, 2), 3.0)]
    result = federated_standardization(sites)
    assert np.allclose(result.mean, 1.8, atol=1e-5) and np.allclose(result.std, np.std([1, 1, 1, 3, 3]), atol=1e-5)
    with pytest.raises(ValueError, match="site 1's row counts, feature sums and sums of squares exceed the public "
                                         "bound 5"):
        federated_standardization(sites, bound=5.0)
    with pytest.raises(ValueError, match="same features"):
        federated_standardization([np.ones((3, 2)), np.ones((3, 3))])
    with pytest.raises(ValueError, match="at least 2 sites"):
        federated_standardization([np.ones((3, 2))])
    with pytest.raises(ValueError, match="bound"):
        federated_standardization(sites, bound=float("inf"))


def site(name, x, y, columns=None):
    return SiteData(np.asarray(x, float), np.asarray(y), columns, name)


@pytest.mark.parametrize("second, match", [
    (site("b", np.ones((2, 3)), [0, 1]), "site b has 3 feature columns where site a has 2"),
    (site("b", np.ones((2, 2)), [0, 1], ("p", "r")), "site b's column 2 is r where site a has q: the sites' columns"),
    (site("b", np.ones((2, 2)), [0, 2]), r"site b has label 2, outside 0\.\.1"),
    (site("b", np.ones((2, 2)), [-1, 0]), "site b has label -1"),
    (site("b", np.ones((0, 2)), np.zeros(0, int)), "site b has no rows"),
    (site("b\x1b[31m", np.ones((2, 3)), [0, 1]), r"site b\\x1b\[31m has 3"),
])
def test_sites_that_do_not_fit_are_refused_naming_the_site(second, match):
    first = site("a", np.ones((2, 2)), [0, 1], ("p", "q"))
    with pytest.raises(ValueError, match=match):
        check_sites([first, second], num_classes=2)


@pytest.mark.parametrize("text, match", [
    ("", "empty"),
    ("a,b\n", "no label column label"),
    ("a,label,label\n1,0,0\n", "appears twice"),
    ("a,label\n", "header but no rows"),
    ("a,label\n1,0\n2\n", "line 3 has 1 fields, the header 2"),
    ("a,label\n1,0\nx,1\n", "line 3, column a is not a finite number"),
    ("a,label\n1,0\nnan,1\n", "line 3, column a is not a finite number"),
    ("a,label\n1,0\n2,yes\n", "line 3's label is not an integer"),
])
def test_a_bad_site_file_is_refused_naming_the_problem(tmp_path, text, match):
    path = tmp_path / "site.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_site(path)


def test_bad_npz_files_and_paths_are_refused(tmp_path):
    np.savez(tmp_path / "no_y.npz", x=np.ones((2, 2)))
    with pytest.raises(ValueError, match="needs arrays 'x' and 'y'"):
        load_site(tmp_path / "no_y.npz")
    np.savez(tmp_path / "objects.npz", x=np.array([{"a": 1}], dtype=object), y=np.zeros(1, int))
    with pytest.raises(ValueError, match="not a readable .npz file of plain arrays"):
        load_site(tmp_path / "objects.npz")
    np.savez(tmp_path / "float_y.npz", x=np.ones((2, 2)), y=np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="integer labels"):
        load_site(tmp_path / "float_y.npz")
    np.savez(tmp_path / "inf.npz", x=np.array([[1.0, np.inf]]), y=np.zeros(1, int))
    with pytest.raises(ValueError, match="row 1, column 2 is not a finite number"):
        load_site(tmp_path / "inf.npz")
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable .npz file"):
        load_site(tmp_path / "broken.npz")
    with pytest.raises(ValueError, match="no such file"):
        load_site(tmp_path / "missing.csv")
    (tmp_path / "site.txt").write_text("a")
    with pytest.raises(ValueError, match="expected a .csv or .npz file"):
        load_site(tmp_path / "site.txt")

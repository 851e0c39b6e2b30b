"""The goal table of the non-linear functions (smpc_bench/nonlinear_goals.py) on a small size."""

import pytest

from smpc_bench import nonlinear_goals


def test_goal_rows_and_table():
    rows = nonlinear_goals.goal_rows(2000, [("additive", 2)], 1)
    assert [row["name"] for row in rows] == [goal[0] for goal in nonlinear_goals.GOALS]
    for row in rows:
        assert row["seconds"] > 0 and row["in_y"] > 0 and row["peak_gib"] > 0
        assert row["setup"] == "2-party additive"
    table = nonlinear_goals.markdown(rows)
    assert table.count("\n| ") == len(rows) and "Y = " in table  # the header line opens the table


def test_bad_arguments():
    with pytest.raises(SystemExit, match="at least 1"):
        nonlinear_goals.main(["--elements", "0"])
    with pytest.raises(SystemExit, match="protocol:parties"):
        nonlinear_goals.main(["--setups", "spdz"])

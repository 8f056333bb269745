"""Hints for failed runs from the end of their logs (issue 17: a forgotten dataset ended in a bare pandas
traceback)."""

from __future__ import annotations

from reprolab_runner.hints import hint

PANDAS = """Traceback (most recent call last):
  File "/work/train.py", line 3, in <module>
    df = pd.read_csv("/data/iris-train.csv")
  File "/usr/lib/python3/dist-packages/pandas/io/common.py", line 873, in get_handle
    handle = open(
FileNotFoundError: [Errno 2] No such file or directory: '/data/iris-train.csv'""".splitlines()


def test_a_dataset_that_was_not_given_says_to_tick_it() -> None:
    said = hint(PANDAS, [])
    assert "dataset 'iris-train.csv' was not given to this run (it had none)" in said
    assert "--dataset iris-train.csv" in said
    assert "it had iris-test-features.csv" in hint(PANDAS, ["iris-test-features.csv"])
    # mounted, yet missing (a subfolder typo): not this cause, so no misleading hint
    assert hint(PANDAS, ["iris-train.csv"]) == ""


def test_a_missing_package_names_the_package_to_add() -> None:
    py = ["Traceback (most recent call last):", "  File \"/work/a.py\", line 1",
          "ModuleNotFoundError: No module named 'sklearn.linear_model'"]
    assert "Python package 'scikit-learn' is not in this environment" in hint(py, [])
    r = ["Error in library(ggplot2) : there is no package called ‘ggplot2’"]
    assert "R package 'ggplot2' is not in this environment" in hint(r, [])


def test_an_unknown_failure_gets_no_hint() -> None:
    assert hint(["ValueError: bad input"], []) == ""
    assert hint([], []) == ""

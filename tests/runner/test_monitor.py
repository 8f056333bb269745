"""The model monitor's statistics against numpy, its drift verdicts against Evidently itself (the
library whose default rules it follows), window boundaries and labels that arrive late."""

from __future__ import annotations

import datetime as dt
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from reprolab_runner.serving import monitor
from reprolab_runner.serving.monitor import Kind, StatTest, Window

T0 = dt.datetime(2026, 12, 4, 9, 59, 59, 999_999, tzinfo=dt.UTC)


def test_feature_stats_match_numpy() -> None:
    values = [3.5, 1.0, None, 8.25, float("nan"), -2.0, 1.0, 7]
    s = monitor.feature_stats(values)
    arr = np.array([3.5, 1.0, 8.25, -2.0, 1.0, 7.0])
    assert (s.count, s.missing) == (8, 2)
    assert s.missing_share == pytest.approx(2 / 8)
    assert s.mean == pytest.approx(arr.mean())
    assert s.median == pytest.approx(np.median(arr))
    assert s.std == pytest.approx(arr.std(ddof=1))
    assert (s.min, s.max) == (-2.0, 8.25)
    assert s.cv == pytest.approx(arr.std(ddof=1) / arr.mean())


def test_feature_stats_edge_cases() -> None:
    assert monitor.feature_stats([]).count == 0
    one = monitor.feature_stats([4.0])
    assert one.std is None and one.cv is None and one.mean == 4.0
    zero_mean = monitor.feature_stats([-1.0, 1.0])
    assert zero_mean.mean == 0 and zero_mean.cv is None and zero_mean.std == pytest.approx(math.sqrt(2))
    words = monitor.feature_stats(["a", None, "b"])
    assert (words.count, words.missing, words.mean) == (3, 1, None)


def test_windows_split_on_utc_hour_and_day_boundaries() -> None:
    late = T0                                  # 09:59:59.999999
    next_hour = T0 + dt.timedelta(microseconds=1)  # 10:00:00
    naive_next_day = dt.datetime(2026, 12, 5, 0, 0)   # naive: taken as UTC
    paris = dt.datetime(2026, 12, 5, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))  # 23:30 UTC on the 4th
    records = [(late, {"x": 1.0}), (next_hour, {"x": 3.0}), (naive_next_day, {"x": 5.0}), (paris, {"x": 7.0})]
    hours = monitor.windowed_stats(records, Window.HOUR)
    assert [h.hour for h in hours] == [9, 10, 23, 0]
    assert hours[dt.datetime(2026, 12, 4, 10, tzinfo=dt.UTC)]["x"].mean == 3.0
    days = monitor.windowed_stats(records, Window.DAY)
    assert list(days) == [dt.datetime(2026, 12, 4, tzinfo=dt.UTC), dt.datetime(2026, 12, 5, tzinfo=dt.UTC)]
    assert days[dt.datetime(2026, 12, 4, tzinfo=dt.UTC)]["x"].count == 3
    # a feature a row lacks is a missing value there
    assert monitor.windowed_stats([(late, {"x": 1.0}), (late, {"y": "a"})], Window.DAY)[
        dt.datetime(2026, 12, 4, tzinfo=dt.UTC)]["x"].missing == 1


# ------------------------------------------------------------------------------ against Evidently


def evidently_drift(reference: pd.DataFrame, current: pd.DataFrame) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from evidently.legacy.metrics import DataDriftTable
        from evidently.legacy.report import Report

        report = Report(metrics=[DataDriftTable()])
        report.run(reference_data=reference, current_data=current)
        return report.as_dict()["metrics"][0]["result"]


EVIDENTLY_TESTS = {"K-S p_value": StatTest.KS, "chi-square p_value": StatTest.CHI_SQUARE,
                   "Z-test p_value": StatTest.Z, "Wasserstein distance (normed)": StatTest.WASSERSTEIN,
                   "Jensen-Shannon distance": StatTest.JENSEN_SHANNON}


def frames(n_ref: int, n_cur: int, shift: bool, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Five features, one of each kind the rules tell apart; ``shift`` moves every one of them."""
    rng = np.random.default_rng(seed)

    def draw(n: int, moved: bool) -> pd.DataFrame:
        return pd.DataFrame({
            "petal_length": rng.normal(4.0 + (1.2 if moved else 0.0), 1.0, n),            # numeric, many values
            "sepal_width": rng.normal(3.0, 0.4 + (0.5 if moved else 0.0), n).round(1),    # numeric, rounded
            "grade": rng.choice([1, 2, 3, 4], n, p=[0.1, 0.2, 0.3, 0.4] if moved else [0.25] * 4),  # 4 values
            "colour": rng.choice(["red", "green", "blue"], n, p=[0.6, 0.3, 0.1] if moved else [0.2, 0.3, 0.5]),
            "member": rng.choice(["yes", "no"], n, p=[0.8, 0.2] if moved else [0.4, 0.6]),  # binary
        })

    return draw(n_ref, False), draw(n_cur, shift)


@pytest.mark.parametrize(("n_ref", "n_cur"), [(400, 300), (3000, 1500)], ids=["small-reference", "large-reference"])
@pytest.mark.parametrize("shift", [False, True], ids=["unshifted", "shifted"])
def test_drift_verdicts_agree_with_evidently(n_ref: int, n_cur: int, shift: bool) -> None:
    for seed in (7, 8):
        ref, cur = frames(n_ref, n_cur, shift, seed)
        theirs = evidently_drift(ref, cur)
        ours = monitor.dataset_drift({c: ref[c].tolist() for c in ref}, {c: cur[c].tolist() for c in cur})
        assert {f.feature for f in ours.features} == set(theirs["drift_by_columns"])
        for f in ours.features:
            col = theirs["drift_by_columns"][f.feature]
            assert f.kind is (Kind.NUMERICAL if col["column_type"] == "num" else Kind.CATEGORICAL), f.feature
            assert f.test is EVIDENTLY_TESTS[col["stattest_name"]], f.feature
            assert f.score == pytest.approx(float(col["drift_score"]), rel=1e-6, abs=1e-12), f.feature
            assert f.drifted == bool(col["drift_detected"]), f.feature
            assert f.threshold == pytest.approx(col["stattest_threshold"])
        assert ours.drifted == bool(theirs["dataset_drift"])
        assert ours.drifted_count == theirs["number_of_drifted_columns"]
        # the data were built so that the verdict is not a coin toss: both directions are exercised
        assert ours.drifted is shift
        # every feature was moved, or none was (a p-value test may still flag one in twenty by chance)
        assert ours.drifted_count == len(ours.features) if shift else ours.drifted_count <= 1


def test_tests_chosen_by_size_and_values() -> None:
    assert monitor.choose_test(list(range(10)), list(range(10)), Kind.NUMERICAL) is StatTest.KS
    assert monitor.choose_test([1, 2, 3], [1, 2, 3], Kind.NUMERICAL) is StatTest.CHI_SQUARE
    assert monitor.choose_test([0, 1], [1, 0], Kind.NUMERICAL) is StatTest.Z
    assert monitor.choose_test(list(range(1001)), [1], Kind.NUMERICAL) is StatTest.WASSERSTEIN
    assert monitor.choose_test(["a"] * 1001, ["b"], Kind.CATEGORICAL) is StatTest.JENSEN_SHANNON


def test_a_category_the_reference_never_had_drifts_and_missing_values_are_left_out() -> None:
    ref = ["a", "b", "c"] * 50
    assert monitor.feature_drift("f", ref, ["a", "b", "c", "d"] * 20).drifted
    same = monitor.feature_drift("f", ref + [None] * 40, ["a", "b", "c"] * 30 + [None])
    assert not same.drifted and same.score == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no values in the current data"):
        monitor.feature_drift("f", ref, [None, float("nan")])


def test_half_the_features_drifting_is_drift() -> None:
    rng = np.random.default_rng(3)
    ref = {"a": rng.normal(0, 1, 300).tolist(), "b": rng.normal(0, 1, 300).tolist()}
    cur = {"a": rng.normal(3, 1, 200).tolist(), "b": rng.normal(0, 1, 200).tolist()}
    result = monitor.dataset_drift(ref, cur)
    assert [f.drifted for f in result.features] == [True, False]
    assert result.drifted_share == 0.5 and result.drifted
    assert not monitor.dataset_drift(ref, cur, share=0.75).drifted


# ------------------------------------------------------------------------------------ predictions


def test_class_shares_and_accuracy_with_late_labels() -> None:
    h = dt.timedelta(hours=1)
    preds = [(T0, "r1", "setosa"), (T0, "r2", "setosa"), (T0, "r3", "virginica"), (T0, "r4", "versicolor"),
             (T0 + h, "r5", "virginica"), (T0 + h, "r6", "virginica")]
    before = monitor.prediction_windows(preds, {}, Window.HOUR)
    assert [w.count for w in before] == [4, 2]
    assert before[0].class_shares == {"setosa": 0.5, "versicolor": 0.25, "virginica": 0.25}
    assert before[0].accuracy is None and before[0].labelled == 0
    labels = {"r1": "setosa", "r2": "versicolor", "r3": "virginica", "r6": "setosa", "unknown": "setosa"}
    after = monitor.prediction_windows(preds, labels, Window.HOUR)
    assert (after[0].labelled, after[0].accuracy) == (3, pytest.approx(2 / 3))
    assert (after[1].labelled, after[1].accuracy) == (1, 0.0)
    day = monitor.prediction_windows(preds, labels, Window.DAY)
    assert len(day) == 1 and day[0].accuracy == pytest.approx(2 / 4)


def test_regression_distribution_and_error() -> None:
    preds = [(T0, "a", 1.5), (T0, "b", 2.5), (T0, "c", 4.0)]
    [w] = monitor.prediction_windows(preds, {"a": 1.0, "c": 5.0}, Window.DAY)
    assert w.class_shares is None
    assert w.distribution.mean == pytest.approx(np.mean([1.5, 2.5, 4.0]))
    assert (w.labelled, w.mae) == (2, pytest.approx(0.75))
    assert w.as_dict()["distribution"]["median"] == 2.5

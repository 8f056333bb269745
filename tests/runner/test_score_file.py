"""The evaluation's score.json becomes a decimal string (no floats on the way) or a reason."""

import pytest
from reprolab_runner.worker import parse_score_file


@pytest.mark.parametrize(("text", "score"), [
    ('{"score": 0.9333333333333333}', "0.9333333333333333"), ('{"score": 1}', "1"), ('{"score": "0.50"}', "0.50"),
    ('{"score": 1e2}', "100"), ('{"score": -2.5, "extra": 1}', "-2.5"),
])
def test_scores(text: str, score: str) -> None:
    assert parse_score_file(text) == (score, "")


@pytest.mark.parametrize(("text", "needle"), [
    ("not json", "not JSON"), ('{"score": true}', "must be"), ('{"score": "NaN"}', "must be"),
    ('{"score": "abc"}', "must be"), ("[1]", "must be"), ('{"accuracy": 1}', "must be"), ('{"score": NaN}', "must be"),
])
def test_bad_score_files(text: str, needle: str) -> None:
    score, error = parse_score_file(text)
    assert score == "" and needle in error

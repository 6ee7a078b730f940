"""The early-stopping rule as pure functions: rungs, dominance, never stopped by a dearer model."""

from mnsearch.search.early_stopping import dominating_count, is_rung, rungs, should_stop


def test_rungs_are_powers_of_two_below_the_budget():
    assert rungs(8) == [1, 2, 4]
    assert rungs(3) == [1, 2]
    assert rungs(1) == []
    assert not is_rung(8, 8) and not is_rung(3, 8) and not is_rung(0, 8)


def test_only_cheaper_and_better_trials_dominate():
    own = {"madds": 10.0, "params": 5.0}
    others = [
        (0.9, {"madds": 10.0, "params": 5.0}),   # equal cost, better: dominates
        (0.9, {"madds": 9.0, "params": 6.0}),    # more params: does not
        (0.9, {"madds": 11.0, "params": 1.0}),   # more Mult-Adds: does not
        (0.5, {"madds": 1.0, "params": 1.0}),    # equal accuracy: does not (strictly higher)
        (0.9, {"madds": 1.0}),                   # params not recorded: counts as infinite
    ]
    assert dominating_count(0.5, own, others) == 1


def test_should_stop_needs_enough_dominating_trials_at_a_rung():
    cheaper_better = [(0.8, {"madds": 1.0}), (0.7, {"madds": 2.0})]
    assert should_stop(2, 8, 0.6, {"madds": 5.0}, cheaper_better, min_dominating=2)
    assert not should_stop(2, 8, 0.75, {"madds": 5.0}, cheaper_better, min_dominating=2)
    assert should_stop(2, 8, 0.75, {"madds": 5.0}, cheaper_better, min_dominating=1)
    assert not should_stop(3, 8, 0.6, {"madds": 5.0}, cheaper_better, min_dominating=1)
    assert not should_stop(8, 8, 0.6, {"madds": 5.0}, cheaper_better, min_dominating=1)
    # A cheap model is never stopped by dearer ones, however accurate.
    assert not should_stop(1, 8, 0.1, {"madds": 0.5}, cheaper_better, min_dominating=1)

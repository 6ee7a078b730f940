"""The alternating timer behind `mnsearch bench` and the experiments' benchmarks.

Fake step functions stand in for models: what is checked is the bookkeeping (who is called how
often, in which order, what a rate means), not the speed of this machine.
"""

import time

import jax.numpy as jnp
import pytest

from mnsearch.train.benchmark import interleaved


def counting_step(name: str, calls: list[str], seconds: float = 0.0):
    def step():
        calls.append(name)
        if seconds:
            time.sleep(seconds)
        return jnp.zeros(())
    return step


def test_interleaved_warms_up_then_alternates_the_entries():
    calls: list[str] = []
    steps = {"a": counting_step("a", calls), "b": counting_step("b", calls)}
    rates = interleaved(steps, count=3, repeats=2, batch_size=4, warmup=1)
    assert calls == ["a", "b"] + (["a"] * 3 + ["b"] * 3) * 2
    assert set(rates) == {"a", "b"} and all(rate > 0 for rate in rates.values())


def test_interleaved_rate_is_images_per_second():
    calls: list[str] = []
    slow, fast = counting_step("slow", calls, 0.02), counting_step("fast", calls, 0.005)
    rates = interleaved({"slow": slow, "fast": fast}, count=2, repeats=1, batch_size=10,
                        warmup=0)
    assert rates["slow"] <= 10 / 0.02  # 10 images a call, at least 20 ms a call
    assert rates["fast"] > rates["slow"]


@pytest.mark.parametrize("count, repeats, batch_size", [(0, 1, 1), (1, 0, 1), (1, 1, 0)])
def test_interleaved_refuses_empty_windows(count, repeats, batch_size):
    with pytest.raises(ValueError, match=">= 1"):
        interleaved({"a": lambda: jnp.zeros(())}, count, repeats, batch_size)

"""The cost model against the papers' tables, Keras' parameter counts, NNX and XLA."""

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from mnsearch.cost import cost, cost_by_op, layer_table
from mnsearch.nn.model import build, count_params, eval_view
from mnsearch.spec.families import preset

# V1 paper, Tables 6 and 7 (Million Mult-Adds, Million params at 224 unless said).
V1_PAPER = [(1.0, 224, 569, 4.2), (0.75, 224, 325, 2.6), (0.5, 224, 149, 1.3),
            (0.25, 224, 41, 0.5), (1.0, 192, 418, 4.2), (1.0, 160, 290, 4.2),
            (1.0, 128, 186, 4.2), (0.5, 160, 76, 1.32)]


@pytest.mark.parametrize("alpha, resolution, madds, params", V1_PAPER)
def test_v1_reproduces_the_paper(alpha, resolution, madds, params):
    totals = cost(preset("v1", alpha, resolution))
    # The paper rounds 568.7 up to 569 but truncates 290.7 to 290 and 76.5 to 76, so its
    # printed value is always the floor or the rounding of the exact count.
    assert madds in (int(totals.madds / 1e6), round(totals.madds / 1e6))
    # V1's params count weights without BatchNorm (BN scale/shift = params_keras - params).
    weights_only = totals.params - (totals.params_keras - totals.params)
    digits = len(str(params).split(".")[1])
    assert round(weights_only / 1e6, digits) == params


def test_v1_table_2_shares_by_layer_type():
    shares = cost_by_op(preset("v1")).set_index("type")
    assert shares.loc["pointwise 1x1", "madds_share"] == pytest.approx(0.9486, abs=5e-4)
    assert shares.loc["pointwise 1x1", "weights_share"] == pytest.approx(0.7459, abs=5e-5)
    assert shares.loc["depthwise 3x3", "madds_share"] == pytest.approx(0.0306, abs=5e-5)
    assert shares.loc["depthwise 3x3", "weights_share"] == pytest.approx(0.0106, abs=5e-5)
    assert shares.loc["fc", "madds_share"] == pytest.approx(0.0018, abs=5e-5)
    assert shares.loc["fc", "weights_share"] == pytest.approx(0.2433, abs=5e-5)
    assert shares.loc["conv 3x3", "weights_share"] == pytest.approx(0.0002, abs=5e-5)
    # The paper prints 1.19% for the stem; 3x3x3x32 at 112x112 is 10.8M = 1.91% of 568.7M.
    assert shares.loc["conv 3x3", "madds_share"] == pytest.approx(0.0191, abs=5e-5)


def test_v2_and_v3_match_the_papers_and_torchvision():
    v2 = cost(preset("v2"))
    assert int(v2.madds / 1e6) == 300 and v2.params == 3_504_872  # torchvision's count
    # The V2 paper's 3.4M (and V3-Large's 5.4M) are the BN-free weights, truncated.
    assert int(10 * (2 * v2.params - v2.params_keras) / 1e6) == 34
    v3_large = cost(preset("v3-large"))
    assert 217e6 <= round(v3_large.madds, -6) <= 219e6 and v3_large.params == 5_483_032
    assert int(10 * (2 * v3_large.params - v3_large.params_keras) / 1e6) == 54
    v3_small = cost(preset("v3-small"))
    assert round(v3_small.madds / 1e6, 1) == 56.5 and v3_small.params == 2_542_856


KERAS_CASES = [("MobileNet", "v1", a, False) for a in (1.0, 0.75, 0.5, 0.25)] + \
    [("MobileNetV2", "v2", a, False) for a in (0.35, 0.5, 1.0, 1.4)] + \
    [(cls, name + ("-minimal" if minimal else ""), a, minimal)
     for cls, name in (("MobileNetV3Large", "v3-large"), ("MobileNetV3Small", "v3-small"))
     for a in (0.75, 1.0) for minimal in (False, True)]


@pytest.mark.parametrize("keras_class, name, alpha, minimal", KERAS_CASES)
def test_params_keras_equals_keras_count_params(keras_class, name, alpha, minimal):
    keras = pytest.importorskip("keras")
    options = {"minimalistic": minimal} if "V3" in keras_class else {}
    model = getattr(keras.applications, keras_class)(weights=None, alpha=alpha, **options)
    assert cost(preset(name, alpha)).params_keras == model.count_params()


@pytest.mark.parametrize("name", ["v1", "v2", "v3-large", "v3-small-minimal"])
def test_analytic_params_equal_the_nnx_model(name):
    spec = preset(name, 0.5, 32, num_classes=10, in_channels=1)
    model = nnx.eval_shape(lambda: build(spec))
    assert count_params(model) == cost(spec).params


@pytest.mark.parametrize("name", ["v1", "v2", "v3-large", "v3-small"])
def test_madds_agree_with_xla_cost_analysis(name, monkeypatch):
    """XLA counts 2 flops per multiply-add plus BN/activation/add work the papers leave out.

    Measured with the lax.conv depthwise path: flops / (2 x Mult-Adds) = 0.996-1.038 for these
    four at 32-96 px, so 6% bounds it. (The CPU shifted-sum path adds padding and elementwise
    work XLA also counts: 1.08 for V3.)
    """
    monkeypatch.setenv("MNSEARCH_DEPTHWISE", "lax")
    spec = preset(name, 1.0, 64, num_classes=10)
    graph, state = nnx.split(eval_view(build(spec)))
    forward = jax.jit(lambda variables, x: nnx.merge(graph, variables)(x))
    analysis = forward.lower(state, jnp.zeros((1, 64, 64, 3))).compile().cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    assert analysis["flops"] / (2 * cost(spec).madds) == pytest.approx(1.0, abs=0.06)


def test_layer_table_columns_and_totals():
    spec = preset("v3-small", 1.0, 96)
    table = layer_table(spec)
    assert list(table.columns) == ["layer", "op", "kernel", "stride", "input_shape",
                                   "output_shape", "madds", "params", "weights",
                                   "params_keras"]
    totals = cost(spec)
    assert table["madds"].sum() == totals.madds and table["params"].sum() == totals.params
    assert table["params_keras"].sum() == totals.params_keras
    assert table.iloc[0]["output_shape"] == "48x48x16"
    assert totals.model_bytes == 4 * totals.params_keras
    # Peak activation at batch 1: the stem's input and output maps are the largest pair.
    assert totals.peak_activation_bytes == 4 * (96 * 96 * 3 + 48 * 48 * 16)


# --- hostile inputs ---------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--alpha", "nan"], "alpha (width multiplier) must be a number > 0"),
    (["--alpha", "inf"], "got inf"),
    (["--alpha", "1e300"], "<= 65536"),
    (["--alpha", "5000"], "v1 at alpha 5000"),
    (["--resolution", "100000"], "field 'resolution': expected an integer from 1 to 8192"),
    (["--classes", "0"], "field 'num_classes'"),
])
def test_cost_command_refuses_non_finite_and_huge_numbers(capsys, argv, message):
    from mnsearch.cli.main import main
    assert main(["cost", "v1", *argv]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


def test_latency_refuses_a_model_beyond_the_memory_limit(monkeypatch):
    """α = 200 would need ~1.4 TB of weights: refused from the cost model, nothing built."""
    from mnsearch.nn import latency

    huge = preset("v1", 200.0, 224)
    needed = latency.memory_estimate(huge, 1)
    assert needed > 3 * cost(huge).model_bytes > 10**12
    monkeypatch.setattr(latency, "memory_limit", lambda: 64 << 30)
    monkeypatch.setattr(latency, "build", lambda *args: pytest.fail("the model was built"))
    with pytest.raises(latency.LatencyError, match=r"needs about 1,\d+\.\d GiB .*smaller alpha"):
        latency.measure_latency(huge)
    with pytest.raises(latency.LatencyError, match="batch 10000000"):
        latency.measure_latency(preset("v1", 0.25, 32), batch_size=10_000_000)
    small = preset("v1", 0.25, 32)
    assert latency.memory_estimate(small, 8) < latency.memory_estimate(small, 16) < 64 << 20


def test_memory_limit_is_a_fraction_of_physical_memory():
    import os

    from mnsearch.nn.latency import MEMORY_FRACTION, memory_limit
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert 0 < memory_limit() <= MEMORY_FRACTION * physical

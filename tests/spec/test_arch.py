"""Spec layer: block strings, width rules, stride schedules, dict round trip, validation."""

import typing

import pytest

from mnsearch.spec.arch import ArchSpec, SpecChanges, spec_from_dict, spec_to_dict
from mnsearch.spec.blocks import (
    STRIDE_SCHEDULES,
    BlockSpec,
    HeadSpec,
    SpecError,
    format_block,
    make_divisible,
    parse_block,
)
from mnsearch.spec.families import PRESETS, preset
from mnsearch.spec.io import resolve_arch, save_spec
from mnsearch.spec.plan import effective_strides, layer_plan, minimum_resolution


def test_make_divisible_matches_the_tf_slim_rule():
    assert make_divisible(32 * 0.35) == 16  # 8 would be > 10% below 11.2
    assert make_divisible(16 * 0.75) == 16
    assert make_divisible(24 * 0.75) == 24  # 18 -> 16 is > 10% down, so 24
    assert make_divisible(960 * 0.75) == 720
    assert make_divisible(1280 * 1.4) == 1792


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize("alpha", [0.35, 0.75, 1.0, 1.3])
def test_every_preset_block_round_trips_through_its_string(name, alpha):
    spec = preset(name, alpha, 160)
    for block in (spec.stem, *spec.blocks):
        text = format_block(block)
        assert parse_block(text) == block
        assert format_block(parse_block(text)) == text
    assert spec_from_dict(spec_to_dict(spec)) == spec


def test_block_string_examples():
    block = parse_block("ir_k5_s2_e11/3_c40_se0.25_hswish")
    assert block == BlockSpec("ir", 5, 2, 40, expansion=11 / 3, se_ratio=0.25,
                              activation="hswish")
    assert format_block(block) == "ir_k5_s2_e11/3_c40_se0.25_hswish"
    assert format_block(parse_block("ds_k3_s1_c64_relu6_noskip")) == "ds_k3_s1_c64_relu6_noskip"
    assert format_block(BlockSpec("ir", 3, 1, 80, expansion=2.3)) == "ir_k3_s1_e2.3_c80_relu"


@pytest.mark.parametrize("text, message", [
    ("xx_k3_s1_c8", "unknown block type 'xx'"),
    ("ir_k3_s1_c8_swish", "unknown token 'swish'"),
    ("ir_k3_c8", "missing s<int>"),
    ("ir_k3_s3_c8", "stride must be 1 or 2"),
    ("ir_k4_s1_c8", "kernel_size must be odd"),
    ("ds_k3_s1_e6_c8", "expansion applies to 'ir' blocks only"),
    ("ir_k3_s1_eX_c8", "'X' is not a number"),
    ("ir_kX_s1_c8", "unknown token 'kX'"),
    ("ir_k3_s1_c8_c16", "given twice"),
    ("cn_k3_s1_c8_se0.25", "squeeze-excite applies"),
])
def test_malformed_block_strings_name_the_problem(text, message):
    with pytest.raises(SpecError, match=message):
        parse_block(text)


def test_v1_uses_truncation_and_v2_v3_make_divisible():
    v1 = preset("v1", 0.75)
    assert v1.stem.out_channels == 24 and v1.blocks[-1].out_channels == 768
    v2 = preset("v2", 0.35)
    assert v2.stem.out_channels == 16 and v2.blocks[0].out_channels == 8
    assert v2.blocks[-1].out_channels == 1280  # last conv kept at 1280 for alpha <= 1
    assert preset("v2", 1.4).blocks[-1].out_channels == 1792
    v3 = preset("v3-large", 0.75)
    assert v3.stem.out_channels == 16  # V3 stem is not scaled
    assert v3.head.channels == 1280 and preset("v3-small", 1.25).head.channels == 1280


def test_table_rows_repeat_with_the_stride_on_the_first_copy():
    assert [b.stride for b in preset("v1").blocks] == [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]
    assert [len(stage) for stage in preset("v2").stages] == [1, 2, 3, 4, 3, 3, 1, 1]


def test_v3_small_minimal_scaled_in_block_strings():
    """The V3 rule at alpha 0.75, the minimalistic changes, and the last conv at 6x (432 = 6x72)."""
    spec = preset("v3-small-minimal", 0.75)
    assert [format_block(b) for b in (spec.stem, *spec.blocks)] == [
        "cn_k3_s2_c16_relu", "ir_k3_s2_e1_c16_relu", "ir_k3_s2_e4.5_c24_relu",
        "ir_k3_s1_e11/3_c24_relu", "ir_k3_s2_e4_c32_relu", "ir_k3_s1_e6_c32_relu",
        "ir_k3_s1_e6_c32_relu", "ir_k3_s1_e3_c40_relu", "ir_k3_s1_e3_c40_relu",
        "ir_k3_s2_e6_c72_relu", "ir_k3_s1_e6_c72_relu", "ir_k3_s1_e6_c72_relu",
        "cn_k1_s1_c432_relu"]
    assert spec.head == HeadSpec(1024, "relu", 0.2)


def test_v3_minimal_has_no_se_no_hswish_and_3x3_kernels():
    spec = preset("v3-large-minimal")
    assert spec.stem.activation == "relu" and spec.head.activation == "relu"
    assert all(b.kernel_size == 3 and b.se_ratio == 0 and b.activation == "relu"
               for b in spec.blocks if b.block_type == "ir")


def test_expanded_and_se_widths_follow_keras():
    _, _, planned = layer_plan(preset("v3-small"))
    assert [p.expanded_channels for p in planned[:-1]] == \
        [16, 72, 88, 96, 240, 240, 120, 144, 288, 576, 576]
    assert planned[0].se_channels == 8 and planned[4].se_channels == 64


def test_stride_schedules_are_named_and_explicit():
    spec = preset("v2", 1.0, 28, stride_schedule="paper")
    assert effective_strides(spec)[:3] == (2, 1, 2)
    stem1 = spec.replace(stride_schedule="stem1")
    assert effective_strides(stem1)[:3] == (1, 1, 2)
    cifar = spec.replace(stride_schedule="cifar")
    assert effective_strides(cifar)[:3] == (1, 1, 1)
    assert set(STRIDE_SCHEDULES) == {"paper", "stem1", "cifar"}
    assert layer_plan(cifar)[2][-1].out_size == 4


def test_resolution_too_small_for_the_schedule_is_refused():
    spec = preset("v1", 1.0, 224)
    assert minimum_resolution(spec) == 17
    preset("v1", 1.0, 17)
    with pytest.raises(SpecError, match=r"too small for stride schedule 'paper'.*>= 17"):
        preset("v1", 1.0, 16)
    preset("v1", 1.0, 9, stride_schedule="stem1")


def test_rho_is_resolution_over_base():
    assert preset("v1", 1.0, 160).rho == pytest.approx(160 / 224)


def test_spec_dict_errors_name_the_field():
    data = spec_to_dict(preset("v2"))
    with pytest.raises(SpecError, match="unknown field 'widht'.*allowed: name, family"):
        spec_from_dict({**data, "widht": 1}, source="my.yaml")
    with pytest.raises(SpecError, match="my.yaml: missing field 'stem'"):
        spec_from_dict({k: v for k, v in data.items() if k != "stem"}, source="my.yaml")
    with pytest.raises(SpecError, match="my.yaml: block 'ir_k3_s9_c8'"):
        spec_from_dict({**data, "stages": [["ir_k3_s9_c8"]]}, source="my.yaml")
    with pytest.raises(SpecError, match="unknown preset option 'classes'"):
        preset("v2", classes=10)
    with pytest.raises(SpecError, match="alpha"):
        preset("v3-small", -1.0)


def test_replace_accepts_exactly_the_spec_fields():
    assert typing.get_type_hints(SpecChanges) == typing.get_type_hints(ArchSpec)


def test_resolve_arch_changes_a_spec_file_in_one_step(tmp_path):
    path = tmp_path / "net.yaml"
    save_spec(preset("v1", 0.5), path)
    # resolution 9 fits only with the new schedule: both must change together
    spec = resolve_arch(str(path), resolution=9, stride_schedule="stem1", num_classes=10)
    assert (spec.resolution, spec.stride_schedule, spec.num_classes) == (9, "stem1", 10)
    assert spec.stages == preset("v1", 0.5).stages
    with pytest.raises(SpecError, match="presets only"):
        resolve_arch(str(path), alpha=0.5)


# --- hostile inputs: every field typed and finite, every file one line ------------------

@pytest.mark.parametrize("field, value, message", [
    ("resolution", "abc", "x.yaml: field 'resolution': expected an integer, got 'abc'"),
    ("resolution", 32.5, "field 'resolution': expected an integer, got 32.5"),
    ("resolution", True, "field 'resolution': expected an integer, got True"),
    ("resolution", 100_000, "field 'resolution': expected an integer from 1 to 8192"),
    ("alpha", float("nan"), "field 'alpha': expected a finite number, got nan"),
    ("alpha", "1.0", "field 'alpha': expected a number, got '1.0'"),
    ("bn_epsilon", float("inf"), "field 'bn_epsilon': expected a finite number"),
    ("input_scale", float("-inf"), "field 'input_scale': expected a finite number"),
    ("num_classes", [10], "field 'num_classes': expected an integer, got [10]"),
    ("name", 5, "field 'name': expected a string, got 5"),
    ("padding", ["same"], "unknown padding ['same']"),
    ("head", {"channels": "wide"}, "field 'head.channels': expected an integer, got 'wide'"),
    ("head", {"dropout": float("nan")}, "field 'head.dropout': expected a finite number"),
    ("stem", 7, "field 'stem': expected a block string, got 7"),
    ("stages", [["ir_k3_s1_e6_c16_relu"] * 1025], "at most 1024 blocks"),
])
def test_spec_fields_are_typed_and_finite(field, value, message):
    data = {**spec_to_dict(preset("v2", 0.5, 32)), field: value}
    with pytest.raises(SpecError) as error:
        spec_from_dict(data, source="x.yaml")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_float_resolution_no_longer_costs_a_wrong_network():
    """`resolution: 32.5` used to be accepted and give Mult-Adds of no real network."""
    data = spec_to_dict(preset("v1", 0.25, 32))
    with pytest.raises(SpecError, match="'resolution': expected an integer, got 32.5"):
        spec_from_dict({**data, "resolution": 32.5})


@pytest.mark.parametrize("text, message", [
    ("ir_k3_s1_enan_c16_relu", "'nan' is not a number"),
    ("ir_k3_s1_einf_c16_relu", "'inf' is not a number"),
    ("ir_k3_s1_e1e999_c16_relu", "'1e999' is not a number"),
    ("ds_k3_s1_c16_seinf", "'inf' is not a number"),
    ("ds_k3_s1_c16_se-nan", "'-nan' is not a number"),
    ("ir_k3_s1_e1/0_c16", "'1/0' is not a number"),
    ("ir_k3_s1_e65_c16", "expansion must be > 0 and <= 64"),
    ("ir_k65_s1_c16", "'kernel_size': expected an integer from 1 to 63"),
    ("ir_k3_s1_c0", "'out_channels': expected an integer from 1 to 1048576, got 0"),
    ("ir_k3_s1_c" + "9" * 5000, "is too large"),
    ("ir_k٣_s1_c16", "unknown token 'k٣'"),  # int() would read Arabic-Indic digits
    ("ir_k3_s1_c16_relu\nhswish", "unknown token 'relu\\nhswish'"),
])
def test_block_numbers_must_be_finite_and_in_range(text, message):
    with pytest.raises(SpecError) as error:
        parse_block(text)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_numpy_numbers_are_normalised_and_specs_stay_hashable():
    import numpy as np
    spec = preset("v1", np.float64(0.5), 64, num_classes=np.int64(10))
    assert type(spec.num_classes) is int and type(spec.alpha) is float
    listed = spec.replace(stages=[list(stage) for stage in spec.stages])
    assert listed == spec and hash(listed) == hash(spec)


@pytest.mark.parametrize("alpha", [float("nan"), float("inf"), -1.0, 0.0, 1e300, True, "1"])
def test_presets_refuse_alphas_without_integer_widths(alpha):
    with pytest.raises(SpecError, match="alpha"):
        preset("v2", alpha)


def test_an_alpha_too_wide_for_a_spec_names_the_alpha():
    with pytest.raises(SpecError, match="v1 at alpha 5000: a layer of 1,280,000 channels, "
                                        "more than the limit of 1,048,576: use a smaller alpha"):
        preset("v1", 5000)
    for name in PRESETS:  # whichever layer is the first too wide, the alpha is named
        with pytest.raises(SpecError, match=f"{name} at alpha 3000: a layer of"):
            preset(name, 3000)


@pytest.mark.parametrize("content, message", [
    (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "not a text file"),
    (b"[" * 100_000, "nested too deeply"),
    (b"a: " + b"{b: " * 50_000, "nested too deeply"),
    (b"resolution: " + b"9" * 5000, "not valid YAML"),  # int() refuses 4,300 digits
    (b"a: [1\nb", "not valid YAML"),
    (b"- a\n- b\n", "a spec must be a mapping of fields, got list"),
])
def test_hostile_spec_files_are_one_line_naming_the_file(tmp_path, content, message):
    path = tmp_path / "net.yaml"
    path.write_bytes(content)
    with pytest.raises(SpecError) as error:
        resolve_arch(str(path))
    assert str(error.value).startswith(str(path)) and message in str(error.value)
    assert "\n" not in str(error.value)


def test_deep_json_and_oversized_spec_files(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SpecError, match="deep.json: nested too deeply"):
        resolve_arch(str(deep))
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (5 << 20))
    with pytest.raises(SpecError, match="big.yaml: larger than 4 MiB"):
        resolve_arch(str(big))


@pytest.mark.parametrize("arch", ["v1\x00", "a" * 5000, "two\nlines"])
def test_arch_names_the_system_cannot_look_up_are_unknown(arch):
    with pytest.raises(SpecError, match="unknown architecture") as error:
        resolve_arch(arch)
    assert "\n" not in str(error.value)

"""Property-based tests (Hypothesis): any input is a valid object or one `MnsearchError`.

The parsers of everything a user types or a file holds — spec dicts, block strings, search
spaces, `--set` settings, the `cost` command line — are fed generated input, from arbitrary
text and nested YAML-like values to near-valid inputs with one field spoiled. None may raise
anything but the project's own error (which the CLI prints as one line, exit 2), and what they
accept must be usable: a spec costs, a space builds its first point. Round trips: block strings
and spec dicts are written back exactly.

Runs derandomized (the same examples every run, so CI is reproducible) within a time budget;
`MNSEARCH_HYPOTHESIS=explore` draws new, 10x more examples and prints the seed of a failure.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
from fractions import Fraction

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from mnsearch.cli.main import build_parser, main
from mnsearch.cli.train import _flag_values
from mnsearch.cost import cost
from mnsearch.errors import MnsearchError
from mnsearch.export.card import reproduce_command
from mnsearch.search.space import SearchSpace, build_spec, load_space, violated_constraints
from mnsearch.search.study import SweepOptions, recipe
from mnsearch.spec.arch import ArchSpec, spec_from_dict, spec_to_dict
from mnsearch.spec.blocks import (
    ACTIVATIONS,
    PADDINGS,
    SE_GATES,
    STRIDE_SCHEDULES,
    BlockSpec,
    HeadSpec,
    SpecError,
    format_block,
    format_number,
    parse_block,
)
from mnsearch.spec.families import PRESETS, preset
from mnsearch.spec.io import save_spec
from mnsearch.train.config import (
    COMPUTE_DTYPES,
    OPTIMIZERS,
    SCHEDULES,
    TrainConfig,
    config_from_settings,
    parse_settings,
    recipe_fields,
)

settings.register_profile(
    "mnsearch-ci", derandomize=True, database=None, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.register_profile(
    "mnsearch-explore", derandomize=False, database=None, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
PROFILE = os.environ.get("MNSEARCH_HYPOTHESIS", "ci")
BASE = settings.get_profile(f"mnsearch-{PROFILE}")


def budget(examples: int) -> settings:
    """`examples` per test in CI (the suite's time budget), 10x that when exploring."""
    return settings(BASE, max_examples=examples * (10 if PROFILE == "explore" else 1))


# --- values as YAML and JSON files hold them ------------------------------------------------

SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(-10**400, 10**400)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=4),
                      max_leaves=12)
NUMBERISH = st.sampled_from(["nan", "inf", "-inf", "1e999", "0", "-1", "0.5", "1", "3", "7",
                             "24", "1/3", "11/3", "1/0", "2.5e-3", "9" * 12, "٣", " 3", ""])


# --- block strings ----------------------------------------------------------------------

def _canonical_numbers() -> st.SearchStrategy[str]:
    """Ratios as `format_number` writes them: integers, short decimals, exact small fractions."""
    integers = st.integers(1, 12).map(str)
    decimals = st.integers(1, 999).map(lambda n: repr(n / 100)).filter(
        lambda text: not text.endswith(".0") and len(text) <= 6)
    fractions = st.tuples(st.integers(1, 200), st.integers(2, 64)).map(
        lambda pair: Fraction(*pair)).filter(
        lambda f: f.denominator > 1 and len(repr(float(f))) > 6
    ).map(lambda f: f"{f.numerator}/{f.denominator}")
    return integers | decimals | fractions


@st.composite
def canonical_blocks(draw: st.DrawFn) -> str:
    """A valid block string in `format_block`'s token order."""
    block_type = draw(st.sampled_from(["cn", "ds", "ir"]))
    kernel = draw(st.sampled_from([1, 3, 5, 7, 9]))
    tokens = [block_type, f"k{kernel}", f"s{draw(st.sampled_from([1, 2]))}"]
    if block_type == "ir":
        expansion = draw(_canonical_numbers())
        assume(float(Fraction(expansion)) <= 64)
        tokens.append(f"e{expansion}")
    tokens.append(f"c{draw(st.integers(1, 4096))}")
    if block_type != "cn" and draw(st.booleans()):
        ratio = draw(_canonical_numbers().filter(lambda text: 0 < float(Fraction(text)) <= 1))
        tokens.append(f"se{ratio}")
    tokens.append(draw(st.sampled_from(ACTIVATIONS)))
    if draw(st.booleans()):
        tokens.append("noskip")
    return "_".join(tokens)


TOKENS = st.sampled_from(["k3", "s1", "s2", "c16", "e6", "se0.25", "relu", "hswish", "noskip",
                          "k4", "s3", "c0", "e0", "se2", "k", "c", "cX"])
BLOCKISH = st.builds(
    lambda kind, tokens: "_".join([kind, *tokens]),
    st.sampled_from(["cn", "ds", "ir", "xx", ""]),
    st.lists(TOKENS | NUMBERISH.flatmap(lambda n: st.sampled_from(
        [f"k{n}", f"s{n}", f"c{n}", f"e{n}", f"se{n}"])) | st.text(max_size=6), max_size=8))


@budget(1000)
@given(st.text() | BLOCKISH)
def test_any_text_parses_to_a_block_or_a_spec_error(text):
    try:
        block = parse_block(text)
    except SpecError as error:
        assert "\n" not in str(error)
        return
    assert parse_block(format_block(block)) == block


@budget(500)
@given(canonical_blocks())
def test_valid_block_strings_round_trip_exactly(text):
    assert format_block(parse_block(text)) == text


@budget(200)
@given(st.floats(0, 1, exclude_min=True) | st.floats(1e-300, 64))
def test_format_number_reads_back_exactly(value):
    from mnsearch.spec.blocks import parse_number
    assert parse_number(format_number(value), "e") == value


# --- spec dicts -------------------------------------------------------------------------

def _blocks(kind: str) -> st.SearchStrategy[BlockSpec]:
    ratio = st.floats(0, 1) if kind != "cn" else st.just(0.0)
    expansion = st.floats(0.1, 8) if kind == "ir" else st.just(1.0)
    return st.builds(BlockSpec, st.just(kind), st.sampled_from([1, 3, 5, 7]),
                     st.sampled_from([1, 2]), st.integers(1, 96), expansion, ratio,
                     st.sampled_from(ACTIVATIONS), st.booleans())


@st.composite
def arch_specs(draw: st.DrawFn) -> ArchSpec:
    """Presets at any width, size and option, or free-form specs of up to 6 random blocks.

    Free-form specs use 128-256 px and at most 7 strided layers, so every one is valid.
    """
    if draw(st.booleans()):
        return preset(draw(st.sampled_from(list(PRESETS))), draw(st.floats(0.1, 2.0)),
                      draw(st.integers(64, 256)), num_classes=draw(st.integers(2, 1000)),
                      in_channels=draw(st.integers(1, 4)),
                      padding=draw(st.sampled_from(PADDINGS)))
    stages = draw(st.lists(st.lists(st.sampled_from(["ds", "ir", "cn"]).flatmap(_blocks),
                                    min_size=1, max_size=2), min_size=1, max_size=3))
    return ArchSpec(
        name=draw(st.text(min_size=1, max_size=10)), family=draw(st.sampled_from(["v1", "x"])),
        resolution=draw(st.integers(128, 256)), stem=draw(_blocks("cn")),
        stages=tuple(tuple(stage) for stage in stages),
        head=HeadSpec(draw(st.integers(0, 64)), draw(st.sampled_from(ACTIVATIONS)),
                      draw(st.floats(0, 0.9))),
        num_classes=draw(st.integers(1, 100)), alpha=draw(st.floats(0.01, 10)),
        stride_schedule=draw(st.sampled_from(list(STRIDE_SCHEDULES))),
        padding=draw(st.sampled_from(PADDINGS)), se_gate=draw(st.sampled_from(SE_GATES)),
        bn_momentum=draw(st.floats(0.01, 0.999)), bn_epsilon=draw(st.floats(1e-6, 0.1)),
        input_scale=draw(st.floats(-10, 10)), input_offset=draw(st.floats(-10, 10)))


@budget(300)
@given(arch_specs())
def test_spec_dicts_round_trip_exactly(spec):
    data = spec_to_dict(spec)
    assert spec_from_dict(data) == spec
    assert spec_from_dict(yaml.safe_load(yaml.safe_dump(data))) == spec


V2_DICT = spec_to_dict(preset("v2", 0.5, 32, num_classes=10))
SPEC_FIELDS = sorted(V2_DICT)


@st.composite
def spoiled_spec_dicts(draw: st.DrawFn) -> object:
    """A valid spec dict with some fields replaced, added or removed; or anything at all."""
    if draw(st.integers(0, 4)) == 0:
        return draw(VALUES)
    data = dict(V2_DICT)
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(SPEC_FIELDS) | st.text(max_size=6))
        if draw(st.integers(0, 5)) == 0:
            data.pop(key, None)
            continue
        data[key] = draw(VALUES | NUMBERISH | BLOCKISH | st.lists(st.lists(BLOCKISH)))
    return data


@budget(1000)
@given(spoiled_spec_dicts())
@example({**V2_DICT, "alpha": 10**400})  # found by exploring: float() overflowed
@example({**V2_DICT, "resolution": 32.5})
@example({**V2_DICT, "resolution": True})
@example({**V2_DICT, "stages": [["ir_k3_s1_enan_c16_relu"]]})
def test_any_spec_dict_is_a_usable_spec_or_a_spec_error(data):
    try:
        spec = spec_from_dict(data, source="x.yaml")
    except SpecError as error:
        assert str(error).startswith("x.yaml: ") and "\n" not in str(error)
        return
    cost(spec)  # an accepted spec can be costed (and so built)
    assert spec_from_dict(spec_to_dict(spec)) == spec


# --- search spaces ----------------------------------------------------------------------

VALID_SPACE = {
    "name": "p", "base": "v3-small", "dataset": "fashion-mnist",
    "recipe": {"epochs": 2, "subset": 1000, "batch_size": 32, "lr": 0.002, "augment": True},
    "dimensions": {"alpha": [0.5, 0.75], "rho": {"low": 0.5, "high": 1.0, "step": 0.25},
                   "stride_schedule": ["stem1"],
                   "stages": {"kernel": [3, 5], "1": {"se": [0, 0.25], "repeats": [1, 2]}}},
    "objectives": ["accuracy", "madds"], "constraints": {"max_madds": 5e7}, "sampler": "nsga2",
}
SPACE_PATHS = [("name",), ("base",), ("dataset",), ("sampler",), ("objectives",),
               ("recipe",), ("recipe", "epochs"), ("recipe", "lr"), ("recipe", "subset"),
               ("recipe", "augment"), ("recipe", "seed"), ("dimensions",),
               ("dimensions", "alpha"), ("dimensions", "rho"), ("dimensions", "resolution"),
               ("dimensions", "block"), ("dimensions", "stages"),
               ("dimensions", "stages", "kernel"), ("dimensions", "stages", "1"),
               ("dimensions", "stages", "1", "se"), ("dimensions", "stages", "1", "repeats"),
               ("constraints",), ("constraints", "max_madds"), ("constraints", "max_params")]
RANGES = st.fixed_dictionaries({"low": SCALARS, "high": SCALARS, "step": SCALARS})
PLAUSIBLE = st.lists(st.floats(0.05, 2.0) | st.integers(0, 64) | st.sampled_from(
    ["stem1", "cifar", "relu", "hswish", "v2", "v3", "madds", "params", "adamw"]),
    min_size=1, max_size=3) | st.fixed_dictionaries(
    {"low": st.floats(0.1, 1), "high": st.floats(1, 3), "step": st.floats(0.05, 1)})


def _copy(data):
    return yaml.safe_load(yaml.safe_dump(data))


@st.composite
def spoiled_spaces(draw: st.DrawFn) -> object:
    """The valid space with a few values replaced (at any depth), or anything at all."""
    if draw(st.integers(0, 5)) == 0:
        return draw(VALUES)
    data = _copy(VALID_SPACE)
    for _ in range(draw(st.integers(1, 3))):
        *parents, key = draw(st.sampled_from(SPACE_PATHS))
        holder = data
        for parent in parents:
            holder = holder.get(parent) if isinstance(holder, dict) else None
        if isinstance(holder, dict):
            holder[key] = draw(PLAUSIBLE | VALUES | RANGES | st.lists(SCALARS, max_size=3)
                               | st.integers(1, 10**9) | st.booleans()
                               | NUMBERISH.map(lambda text: yaml.safe_load(f"[{text}]")))
    return data


@st.composite
def plausible_spaces(draw: st.DrawFn) -> dict:
    """Well-typed spaces over every dimension: what they accept must build and cost."""
    stage = st.fixed_dictionaries({}, optional={
        "kernel": st.lists(st.sampled_from([1, 3, 5, 7]), min_size=1, max_size=2),
        "expansion": st.lists(st.floats(0.5, 8), min_size=1, max_size=2),
        "se": st.lists(st.sampled_from([0, 0.25, 1]), min_size=1, max_size=2),
        "activation": st.lists(st.sampled_from(ACTIVATIONS), min_size=1, max_size=2),
        "repeats": st.lists(st.integers(1, 4), min_size=1, max_size=2),
        "width": st.lists(st.floats(0.1, 4), min_size=1, max_size=2)})
    stages = st.dictionaries(st.sampled_from(["0", "1", "3", "7", "12"]), stage, max_size=3)
    size = st.sampled_from(["resolution", "rho"])
    dimensions = {
        "alpha": draw(st.lists(st.floats(0.05, 3), min_size=1, max_size=2)),
        draw(size): draw(st.lists(st.integers(8, 96), min_size=1, max_size=2)),
        "stride_schedule": draw(st.lists(st.sampled_from(list(STRIDE_SCHEDULES)), min_size=1)),
        "stages": {**draw(stage), **draw(stages)}}
    if draw(st.booleans()):
        dimensions["block"] = draw(st.lists(st.sampled_from(["v1", "v2", "v3", "v3-large"]),
                                            min_size=1, max_size=2))
    return {"base": draw(st.sampled_from(list(PRESETS))), "dimensions": dimensions,
            "constraints": {"max_madds": draw(st.floats(1e3, 1e9))}}


@pytest.fixture(scope="module")
def space_file(tmp_path_factory):
    return tmp_path_factory.mktemp("spaces") / "space.yaml"


@budget(600)
@given(spoiled_spaces() | plausible_spaces() | st.binary(max_size=64))
def test_any_space_file_is_a_usable_space_or_a_space_error(space_file, data):
    if isinstance(data, bytes):
        space_file.write_bytes(data)
    else:
        space_file.write_text(yaml.safe_dump(data, allow_unicode=True))
    try:
        space = load_space(space_file)
    except MnsearchError as error:
        assert str(error).startswith(str(space_file)) and "\n" not in str(error)
        return
    _use(space)


def _use(space: SearchSpace) -> None:
    """What a sweep does with a space first: a recipe, and the first point's spec and cost."""
    assert space.size >= 1
    recipe(space, SweepOptions("p"))
    first = {name: values[0] for name, values in space.choices.items()}
    try:
        spec = build_spec(space, first, in_channels=1, num_classes=10, dataset_resolution=28)
    except SpecError:
        return  # an infeasible point: the sweep rejects it with this reason
    violated_constraints(space, spec)


def test_deeply_nested_and_binary_space_files_are_one_line(space_file):
    for text in ("[" * 100_000, "a: " + "{b: " * 50_000, "\x00\xff\xfe"):
        space_file.write_bytes(text.encode("latin-1"))
        with pytest.raises(MnsearchError, match="space.yaml"):
            load_space(space_file)


# --- training settings ------------------------------------------------------------------

FIELDS = list(recipe_fields())
SETTINGS = st.builds(lambda key, value: f"{key}={value}",
                     st.sampled_from(FIELDS) | st.text(max_size=8),
                     NUMBERISH | st.sampled_from(["true", "no", "none", "adamw", "x"])
                     | st.text(max_size=8)) | st.text(max_size=12)


@budget(500)
@given(st.lists(SETTINGS, max_size=5))
@example(["\n"])  # found: the setting was quoted raw, so its newline split the message
def test_any_settings_give_a_recipe_or_a_training_error(settings_list):
    try:
        parse_settings(settings_list)
        config = config_from_settings({}, settings_list)
    except MnsearchError as error:
        assert "\n" not in str(error)
        return
    assert isinstance(config, TrainConfig)


RECIPES = st.builds(
    TrainConfig, epochs=st.integers(1, 500), batch_size=st.integers(1, 1024),
    optimizer=st.sampled_from(OPTIMIZERS), learning_rate=st.floats(1e-6, 1.0),
    weight_decay=st.floats(0, 1), warmup_epochs=st.floats(0, 5) | st.just(0),
    schedule=st.sampled_from(SCHEDULES), label_smoothing=st.floats(0, 0.5),
    seed=st.integers(0, 2**31), validation_fraction=st.floats(0.01, 0.5),
    subset=st.none() | st.integers(10, 10**5) | st.floats(0.01, 1.0),
    augment=st.booleans(), flip=st.booleans(), crop_padding=st.integers(0, 8),
    bn_momentum=st.none() | st.floats(0.01, 0.999), ema_decay=st.none() | st.floats(0.5, 0.9999),
    compute_dtype=st.sampled_from(COMPUTE_DTYPES))


@budget(300)
@given(RECIPES, st.sampled_from(["fashion-mnist", "folder:/data/my images", "cifar10:x"]))
def test_the_cards_train_command_reproduces_any_recipe(config, dataset):
    from dataclasses import asdict
    words = shlex.split(reproduce_command(dataset, asdict(config)))
    args = build_parser().parse_args(words[1:])
    assert args.arch == "spec.yaml" and args.dataset == dataset and args.resolution is None
    assert config_from_settings(_flag_values(args), args.set) == config


# --- the cost command -------------------------------------------------------------------

SPEC_FILES = ("@good", "@bad", "@binary", "@missing")  # stand-ins for the files of `spec_files`


@pytest.fixture(scope="module")
def spec_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("specs")
    save_spec(preset("v3-small", 0.5, 64), folder / "good.yaml")
    (folder / "bad.yaml").write_text("name: x\nresolution: abc\n")
    (folder / "binary.yaml").write_bytes(b"\x89PNG\x00\xff")
    return {name: str(folder / f"{name[1:]}.yaml") for name in SPEC_FILES}


FLAG_VALUES = NUMBERISH | st.text(max_size=6) | st.lists(NUMBERISH, min_size=1, max_size=3).map(
    ",".join)


@st.composite
def cost_argv(draw: st.DrawFn) -> list[str]:
    arch = draw(st.sampled_from([*PRESETS, *SPEC_FILES]) | st.text(max_size=10))
    argv = ["cost", arch]
    for _ in range(draw(st.integers(0, 4))):
        flag = draw(st.sampled_from(["--alpha", "--resolution", "--classes", "--in-channels",
                                     "--schedule", "--layers", "--json", "--bogus"]))
        argv.append(flag)
        if flag not in ("--layers", "--json"):
            argv.append(draw(FLAG_VALUES | st.sampled_from(list(STRIDE_SCHEDULES))))
    return argv


@budget(400)
@given(cost_argv())
@example(["cost", "v1", "--alpha", "\n"])  # found by exploring: a two-line usage error
@example(["cost", "v1", "--alpha", "nan"])
@example(["cost", "v1", "--alpha", "1e300", "--layers"])
@example(["cost", "@binary", "--resolution", "9" * 5000])
@example(["cost", "a" * 5000])  # a name too long to look up
@example(["cost", "v1\x00"])
def test_the_cost_command_exits_0_or_2_and_never_raises(spec_files, argv):
    argv = [spec_files.get(word, word) for word in argv]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as exit_:  # argparse's usage errors: exit 2, as the script does
            status = exit_.code
    assert status in (0, 2), err.getvalue()
    if status == 2:
        assert err.getvalue().count("\n") == 1, err.getvalue()

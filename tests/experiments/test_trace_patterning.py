"""The trace-patterning experiment: its smoke tables, a lane of the side-by-side learner against
TD(λ) run alone on the same stream (which the returns shard reads too), and the summary's logic
on a small hand-made table (test_every_experiment checks the tables, summary and figures every
experiment owes)."""

import dataclasses

import jax
import numpy as np
import pandas as pd
import pytest

import metastep as ms
from metastep._lanes import split_seed
from metastep.experiments import SweptMethod, get, td_random_walk, trace_patterning

EXPERIMENT = get("trace-patterning")
BUDGET = EXPERIMENT.budget("smoke")


@pytest.fixture(scope="module")
def smoke_tables(smoke_run):
    return smoke_run.tables(EXPERIMENT.name)


def test_the_feature_groups_cover_the_features():
    masks = trace_patterning.GROUP_MASKS
    counts = {group: int(mask.sum()) for group, mask in masks.items()}
    assert counts == {"us": 17, "cs": 6 * 17, "distractor": 5 * 17, "bias": 1}
    assert sum(counts.values()) == trace_patterning.NUM_FEATURES == 205


def test_the_smoke_budget_keeps_its_two_shards_and_the_quick_one_adds_the_patterns():
    """CI runs the smoke budget with no headroom: its shards stay the microstimuli errors and
    the returns, at the same cost; the pattern features come at the quick budget, over the
    middle of its grids."""
    shards = trace_patterning.shards(BUDGET)
    assert [shard.name for shard in shards] == ["errors", "returns"]
    assert [(shard.work, shard.engine_lane_steps) for shard in shards] == [
        (6 * 3 * 2 * 2_000, 3 * 2 * 2_000), (2 * 2_000, None)]
    assert shards[0].parameters["problem"]["features"] == "microstimuli"
    assert trace_patterning.pattern_methods(BUDGET) is None
    quick = EXPERIMENT.budget("quick")
    shard = trace_patterning.shards(quick)[-1]
    assert shard.name == "pattern-errors"
    assert shard.parameters["problem"]["features"] == "pattern_microstimuli"
    wide = trace_patterning.budget_methods(quick)  # 9 points: every other one is on 5 points
    for name, method in trace_patterning.pattern_methods(quick).items():
        np.testing.assert_allclose(method.grid, wide[name].grid[2:7:2], rtol=1e-12)


@pytest.mark.slow  # a pattern stream to compile; test_the_pattern_learner... is the fast one
def test_the_pattern_blocks_hold_the_features_of_the_trials_pattern():
    """Each row of PATTERN_BLOCKS is the block of one CS pattern: in a stream, the pattern
    features that are not 0 lie in the block of ``info["pattern"]``."""
    sample = trace_patterning.PATTERN_PROBLEM.sample(split_seed(np.uint32(0))[0], 400)
    active = np.abs(np.asarray(sample.x)[:, trace_patterning.PATTERN_BLOCKS]).sum(-1) > 0
    assert active.any(1).all()
    np.testing.assert_array_equal(np.flatnonzero(active.any(0)),
                                  np.unique(sample.info["pattern"]))
    np.testing.assert_array_equal(active.argmax(1), sample.info["pattern"])


def test_the_pattern_learner_records_each_patterns_geometric_mean():
    """The first NUM_FEATURES pattern features fall in the microstimuli features' groups, the
    others are the 64 blocks of 16; the learner records the groups' and the blocks' geometric
    means."""
    groups = trace_patterning.feature_groups(trace_patterning.PATTERN_PROBLEM)
    np.testing.assert_array_equal(groups[:trace_patterning.NUM_FEATURES],
                                  trace_patterning.feature_groups(trace_patterning.PROBLEM))
    blocks = trace_patterning.PATTERN_BLOCKS
    assert blocks.shape == (trace_patterning.NUM_PATTERNS, 16) == (64, 16)
    np.testing.assert_array_equal(np.sort(blocks.ravel()),
                                  np.arange(trace_patterning.NUM_FEATURES, len(groups)))
    methods = {"td": SweptMethod("td", "TD(λ)", "step_size", "α", (0.1,), ms.sgd)}
    learner = trace_patterning.PatternSideBySide(methods, 0, 0.9)
    assert learner.num_features == len(groups) == 1229
    step_sizes = np.random.default_rng(0).uniform(0.01, 1.0, learner.num_features)
    step_sizes[blocks[3, 0]] = 0.0  # underflowed: counts as the smallest normal float32
    recorded = np.asarray(jax.jit(learner.group_step_sizes)(np.float32(step_sizes)),
                          np.float64)
    logs = np.log(np.maximum(np.float32(step_sizes), np.finfo(np.float32).tiny))
    expected = [np.exp(logs[groups == group].mean()) for group in trace_patterning.GROUPS]
    expected += [np.exp(logs[block].mean()) for block in blocks]
    np.testing.assert_allclose(recorded, expected, rtol=1e-5)


@pytest.mark.slow  # two learners on 1,229 features to compile; the parts are tested fast
def test_the_pattern_shard_splits_the_step_sizes_of_swifttd_run_alone():
    """A lane of pattern_error_sweep: SwiftTD's step sizes at the end, run alone on the seed's
    stream, averaged (geometrically) over the seed's activation patterns' blocks and the other
    patterns' blocks, are the table's last record; TD(λ)'s are NaN."""
    methods = {"td": SweptMethod("td", "TD(λ)", "step_size", "α", (0.01,), ms.sgd),
               "swifttd": dataclasses.replace(
                   trace_patterning.budget_methods(BUDGET)["swifttd"], grid=(1e-2,))}
    seed, steps = 3, 600
    table = trace_patterning.pattern_error_sweep(trace_patterning.PATTERN_PROBLEM, methods,
                                                 trace_patterning.TRACE_DECAY, [seed], steps, 300)
    learner = ms.td.SwiftTD(trace_patterning.PATTERN_PROBLEM.num_features,
                            trace_patterning.DISCOUNT, trace_patterning.TRACE_DECAY,
                            meta_step_size=1e-2, **methods["swifttd"].constants)
    result = ms.run(learner, trace_patterning.PATTERN_PROBLEM, steps=steps, seed=seed,
                    record_every=steps)
    logs = np.log(np.asarray(learner.step_sizes(result.final_state), np.float64))
    activation = trace_patterning.activation_patterns(trace_patterning.PATTERN_PROBLEM, seed)
    blocks = trace_patterning.PATTERN_BLOCKS
    last = table[table["step"] == steps].set_index("method")
    for column, chosen in (("step_size_activation", activation), ("step_size_other_pattern",
                                                                   ~activation)):
        np.testing.assert_allclose(last.loc["swifttd", column],
                                   np.exp(logs[blocks[chosen]].mean()), rtol=1e-4)
        assert np.isnan(last.loc["td", column])
    assert last.loc["swifttd", "step_size_activation"] != last.loc["swifttd",
                                                                   "step_size_other_pattern"]


def test_split_pattern_blocks_takes_each_seeds_activation_patterns():
    blocks = ["pattern_0", "pattern_1", "pattern_2", "pattern_3"]
    table = pd.DataFrame({"method": ["meta", "meta", "td"], "seed": [0, 1, 0],
                          "step_size_cs": [0.5, 0.5, np.nan],
                          **dict(zip(blocks, np.array([[1.0, 4.0, 2.0, 8.0],
                                                       [1.0, 4.0, 2.0, 8.0],
                                                       [np.nan] * 4]).T)),
                          "diverged": False})
    activation = {0: np.array([True, True, False, False]),
                  1: np.array([False, True, False, True])}
    split = trace_patterning.split_pattern_blocks(table, activation, blocks)
    assert list(split.columns) == ["method", "seed", "step_size_cs", "step_size_activation",
                                   "step_size_other_pattern", "diverged"]
    np.testing.assert_allclose(split["step_size_activation"], [2.0, np.sqrt(32.0), np.nan])
    np.testing.assert_allclose(split["step_size_other_pattern"], [4.0, np.sqrt(2.0), np.nan])


def test_smoke_tables_hold_every_method_grid_value_and_group(smoke_tables):
    errors, returns = smoke_tables["errors"], smoke_tables["returns"]
    methods = trace_patterning.budget_methods(BUDGET)
    every = trace_patterning.record_every(BUDGET)
    steps = np.arange(every, BUDGET.steps + 1, every)
    for name, method in methods.items():
        rows = errors[errors["method"] == name]
        np.testing.assert_allclose(np.sort(rows["value"].unique()), method.grid, rtol=1e-12)
        np.testing.assert_array_equal(np.sort(rows["step"].unique()), steps)
        healthy = rows[~rows["diverged"]]
        assert len(healthy) and (healthy["value_error"] > 0).all(), name
        step_sizes = rows[list(trace_patterning.STEP_SIZE_COLUMNS)]
        if name == "td":
            assert step_sizes.isna().all().all()
        else:
            assert (healthy[list(trace_patterning.STEP_SIZE_COLUMNS)] > 0).all().all(), name
    for seed in BUDGET.seed_list:
        rows = returns[returns["seed"] == seed]
        np.testing.assert_array_equal(rows["step"], steps)
        assert (rows["return_variance"] > 0).all() and (rows["value_square"] > 0).all()


def test_a_lane_equals_td_run_alone_on_the_stream_of_the_returns_shard(smoke_tables):
    """The side-by-side error of TD(λ) in a lane is the square of the value error that ms.run
    records for TD(λ) alone; the returns shard's rows of the seed are the bin means of
    ``(G − v)²`` and ``v²`` over the stream of the seed's key, which is the stream ms.run reads
    (the same time in the trial at the end of every bin), and whose reinforced trials are those
    of the seed's activation patterns."""
    errors, returns, position, seed = (smoke_tables["errors"], smoke_tables["returns"], 1, 1)
    every = trace_patterning.record_every(BUDGET)
    step_size = trace_patterning.budget_methods(BUDGET)["td"].grid[position]
    learner = ms.td.TDLearner(ms.sgd(step_size), trace_patterning.NUM_FEATURES,
                              trace_patterning.DISCOUNT, trace_patterning.TRACE_DECAY)
    result = ms.run(learner, trace_patterning.PROBLEM, steps=BUDGET.steps, seed=seed,
                    record_every=every)
    lane = errors[(errors["method"] == "td") & (errors["position"] == position)
                  & (errors["seed"] == seed)]
    np.testing.assert_allclose(lane["value_error"].to_numpy(),
                               np.square(result.records["value_error"]), rtol=1e-4)
    # The same trials with presence features (the trials do not depend on the features).
    stream = ms.problems.trace_patterning("presence")
    sample = stream.sample(split_seed(np.uint32(seed))[0], BUDGET.steps)
    np.testing.assert_array_equal(result.info["time_in_trial"],
                                  np.asarray(sample.info["time_in_trial"])[every - 1::every])
    # Without noise a trial is reinforced iff its pattern is one of the seed's activation
    # patterns, as the pattern-errors shard reads them (another seed has others; the patterns
    # do not depend on the features either: this stream's compiled init serves).
    activation = trace_patterning.activation_patterns(stream, seed)
    assert activation.shape == (64,) and activation.sum() == 10
    assert (activation != trace_patterning.activation_patterns(stream, seed + 1)).any()
    reinforced = np.asarray(sample.info["reinforced"])
    np.testing.assert_array_equal(activation[sample.info["pattern"]], reinforced)
    assert reinforced.any() and not reinforced.all()
    value = np.asarray(sample.y.value, np.float64)
    deviation = np.asarray(sample.info["return"], np.float64) - value
    rows = returns[returns["seed"] == seed]
    for column, per_step in (("return_variance", np.square(deviation)),
                             ("value_square", np.square(value))):
        np.testing.assert_allclose(rows[column], per_step.reshape(-1, every).mean(1),
                                   rtol=1e-5)


# A hand-made table: 10 records of 10 steps (the last fifth is the last 2 records), two seeds,
# the second 2 above the first; the meta method's step sizes per group constant in time.
STEPS = np.arange(10, 101, 10)
GROUP_STEP_SIZES = {"us": 0.4, "cs": 0.2, "distractor": 0.05, "bias": 0.1}


PATTERN_STEP_SIZES = {**GROUP_STEP_SIZES, "activation": 0.8, "other_pattern": 0.1}


def lane_rows(method, value, seed, errors, diverge_at=None, groups=GROUP_STEP_SIZES):
    errors = np.asarray(errors, float) + 2.0 * seed
    if diverge_at is not None:
        errors[diverge_at:] = np.nan
    step_sizes = {f"step_size_{group}": np.nan if method == "td" else size * 2.0 ** (seed - 1)
                  for group, size in groups.items()}
    return pd.DataFrame({"method": method, "value": value, "seed": seed, "step": STEPS,
                         "value_error": errors, **step_sizes, "diverged": np.isnan(errors)})


def hand_made_tables():
    falling = np.linspace(100.0, 10.0, 10)
    lanes = [lane_rows("td", 0.1, seed, falling) for seed in (0, 1)]
    # Better while it lasts, but one seed diverges: never the best.
    lanes += [lane_rows("td", 0.2, 0, falling - 5), lane_rows("td", 0.2, 1, falling - 5, 6)]
    lanes += [lane_rows("meta", value, seed, falling + offset)
              for value, offset in ((0.01, 4.0), (0.1, 1.0), (1.0, -3.0)) for seed in (0, 1)]
    returns = pd.DataFrame({"method": "stream", "seed": np.repeat([0, 1], 10),
                            "step": np.tile(STEPS, 2), "return_variance": 0.5 + np.tile(
                                np.arange(10.0), 2), "value_square": 1000.0})
    return {"errors": pd.concat(lanes, ignore_index=True), "returns": returns}


HAND_MADE_METHODS = {
    "td": SweptMethod("td", "TD", "step_size", "α", (0.1, 0.2), ms.sgd),
    "meta": SweptMethod("meta", "Meta", "meta_step_size", "θ", (0.01, 0.1, 1.0), ms.sgd)}


def test_summary_of_hand_made_tables():
    tables = hand_made_tables()
    methods = HAND_MADE_METHODS
    stream = trace_patterning.stream_numbers(tables["returns"])
    assert stream == {"return_variance": 5.0, "final_return_variance": 9.0,
                      "zero_prediction_error": 1000.0}
    summary = trace_patterning.error_summary(tables["errors"], methods, stream)
    td = summary["td"]
    assert td["best"]["value"] == 0.1 and td["diverged_configurations"] == 1
    assert td["best"]["mean_error"] == pytest.approx(55.0 + 1.0)  # mean of 100 … 10, seeds
    assert td["best"]["mean_error_se"] == pytest.approx(1.0)  # two seeds 2 apart
    assert td["best"]["final_error"] == pytest.approx(15.0 + 1.0)  # the records 20 and 10
    assert td["best"]["msre"] == pytest.approx(56.0 + 5.0)
    assert td["best"]["final_msre"] == pytest.approx(16.0 + 9.0)
    assert "final_step_sizes" not in td["best"] and "default_vs_td_best" not in td
    meta = summary["meta"]
    assert meta["best"]["value"] == 1.0 and meta["default"]["value"] == 0.1
    assert meta["default"]["mean_error"] == pytest.approx(57.0)
    # the geometric mean over the seeds of size / 2 and size
    expected = {group: size / np.sqrt(2) for group, size in GROUP_STEP_SIZES.items()}
    assert meta["default"]["final_step_sizes"] == pytest.approx(expected)
    assert meta["default"]["distractor_to_cs"] == pytest.approx(0.25)
    assert "activation_to_cs" not in meta["default"]
    paired = meta["default_vs_td_best"]
    assert paired["mean"] == pytest.approx(1.0)
    assert paired["standard_error"] == pytest.approx(0.0, abs=1e-12)


def test_pattern_summary_of_hand_made_tables():
    """The pattern features' table: the activation patterns' step sizes over the other groups',
    and each method's error minus its error on the microstimuli alone, paired by seed (the
    meta method's defaults, TD(λ)'s best α on each table; NaN where a seed diverged)."""
    tables = hand_made_tables()
    falling = np.linspace(100.0, 10.0, 10)
    lanes = [lane_rows("td", value, seed, falling + offset, groups=PATTERN_STEP_SIZES)
             for seed in (0, 1) for value, offset in ((0.1, 0.0), (0.2, -6.0 - seed))]
    lanes += [lane_rows("meta", value, seed, falling + offset, groups=PATTERN_STEP_SIZES)
              for seed in (0, 1)
              for value, offset in ((0.01, 9.0), (0.1, -2.0 - 3.0 * seed), (1.0, 0.0))]
    tables["pattern-errors"] = pd.concat(lanes, ignore_index=True)
    stream = trace_patterning.stream_numbers(tables["returns"])
    microstimuli = trace_patterning.error_summary(tables["errors"], HAND_MADE_METHODS, stream)
    summary = trace_patterning.pattern_summary(tables, HAND_MADE_METHODS, microstimuli, stream)
    td, meta = summary["td"], summary["meta"]
    assert td["best"]["value"] == 0.2 and meta["default"]["value"] == 0.1
    # TD(λ): 0.2 here (offsets −6, −7) against 0.1 there (offset 0): −6.5, seeds 1 apart
    assert td["vs_microstimuli"]["mean"] == pytest.approx(-6.5)
    assert td["vs_microstimuli"]["standard_error"] == pytest.approx(0.5)
    # the defaults: offsets −2, −5 here against 1, 1 there
    assert meta["vs_microstimuli"]["mean"] == pytest.approx(-4.5)
    assert meta["vs_microstimuli"]["standard_error"] == pytest.approx(1.5)
    default = meta["default"]
    expected = {group: size / np.sqrt(2) for group, size in PATTERN_STEP_SIZES.items()}
    assert default["final_step_sizes"] == pytest.approx(expected)
    assert default["activation_to_other_pattern"] == pytest.approx(8.0)
    assert default["activation_to_cs"] == pytest.approx(4.0)
    assert default["activation_to_distractor"] == pytest.approx(16.0)
    assert default["distractor_to_cs"] == pytest.approx(0.25)
    # A diverged seed on either table leaves no paired difference.
    tables["errors"].loc[(tables["errors"]["method"] == "meta")
                         & (tables["errors"]["value"] == 0.1)
                         & (tables["errors"]["step"] == 100), "diverged"] = True
    microstimuli = trace_patterning.error_summary(tables["errors"], HAND_MADE_METHODS, stream)
    summary = trace_patterning.pattern_summary(tables, HAND_MADE_METHODS, microstimuli, stream)
    assert np.isnan(summary["meta"]["vs_microstimuli"]["mean"])
    assert summary["td"]["vs_microstimuli"]["mean"] == pytest.approx(-6.5)


def test_a_blow_up_under_the_engines_threshold_counts_as_diverged():
    """A TD error of 2,000 (squared 4·10⁶: past the experiment's 10⁶, far under the engine's
    10²⁰) marks TD(λ) diverged on trace patterning; the random walk's learner keeps the
    engine's threshold and goes on."""
    methods = {"td": SweptMethod("td", "TD(λ)", "step_size", "α", (0.1,), ms.sgd)}
    for side_by_side, diverged in ((trace_patterning.PatterningSideBySide, True),
                                   (td_random_walk.RandomWalkSideBySide, False)):
        learner = side_by_side(methods, 0, 0.9)
        x = np.zeros(learner.num_features, np.float32)
        x[0] = 1.0
        state = learner.init(jax.random.key(0))
        for reward in (0.0, 2_000.0):
            state, _ = learner.step(state, x, ms.td.TDTarget(np.float32(reward), np.float32(1.0),
                                                             np.float32(0.0)))
        assert bool(state.diverged_at["td"] == 2) is diverged, side_by_side.__name__

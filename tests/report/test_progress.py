"""Progress: it moves inside a long shard, says which experiment of how many, and a log holds
plain lines (no carriage returns, no escape codes)."""

import functools
import io
import re

import pandas as pd
import pytest

import metastep as ms
from metastep import engine
from metastep.experiments import Budget, Experiment, Shard
from metastep.report import RunDirectory, run_experiment
from metastep.report import progress as progress_module
from metastep.report.progress import LogProgress, duration, progress_bar

STEPS, CHUNK = 4_000, 1_000  # four compiled chunks in one shard


def one_chunked_run(budget: Budget) -> pd.DataFrame:
    learner = ms.LinearLearner(ms.sgd(0.01), 20)
    result = ms.run(learner, ms.problems.weight_flipping(), steps=budget.steps,
                    record_every=CHUNK, chunk_steps=CHUNK)
    return pd.DataFrame({"method": "sgd", "seed": 0, "step": result.steps,
                         "squared_error": result.squared_error})


def one_shard_experiment(work_factor: float) -> Experiment:
    """One shard of four engine chunks, declaring ``work_factor`` times the engine's
    lane-steps as its work (as a roster of methods per lane does)."""

    def shards(budget):
        work = work_factor * budget.steps
        return [Shard("only", functools.partial(one_chunked_run, budget), {"steps": budget.steps},
                      work=work, engine_lane_steps=budget.steps if work_factor != 1 else None)]

    return Experiment(
        name="one-shard", description="one long shard",
        budgets={name: Budget(steps=STEPS, seeds=1) for name in ("smoke", "quick", "full")},
        shards=shards, summarize=lambda tables, budget: {}, figures=lambda tables, budget: {},
        published=[], explanation="one shard",
    )


@pytest.fixture
def every_update_logged(monkeypatch):
    monkeypatch.setattr(progress_module, "LOG_INTERVAL", 0.0)


@pytest.mark.parametrize("work_factor", [1, 11])
def test_progress_moves_inside_a_shard_in_plain_lines(tmp_path, capsys, every_update_logged,
                                                      work_factor):
    experiment = one_shard_experiment(work_factor)
    run_experiment(RunDirectory(tmp_path), experiment, experiment.budget("smoke"),
                   title="experiment 2/3: one-shard")
    log = capsys.readouterr().err
    assert "\r" not in log and "\x1b" not in log
    lines = log.splitlines()
    assert all(line.startswith("experiment 2/3: one-shard: ") for line in lines)
    percents = [int(re.search(r"(\d+)% of", line).group(1)) for line in lines]
    # One line at the start, one per compiled chunk (the last is the shard's end), one at the end.
    assert percents == [0, 25, 50, 75, 100, 100]
    assert f"of {progress_module.amount(work_factor * STEPS)} lane-steps" in lines[0]
    assert "shard only" in lines[1] and "left" in lines[1]


def test_a_shard_that_runs_more_than_it_declares_stops_at_its_end(every_update_logged):
    stream = io.StringIO()
    bar = LogProgress(total=200, desc="x", stream=stream)
    with progress_module.shard_progress(bar, work=100):
        for _ in range(3):
            for callback in engine._PROGRESS_LISTENERS.get():
                callback(60)
        assert bar.n == 100  # never into the next shard's work
    assert bar.n == 100


def test_log_lines_come_at_a_modest_rate():
    now = [0.0]
    stream = io.StringIO()
    bar = LogProgress(total=100, desc="x", stream=stream, interval=30, clock=lambda: now[0])
    for _ in range(10):  # ten updates within 10 s: no line
        now[0] += 1
        bar.update(1)
    now[0] += 25
    bar.update(1)  # 35 s since the first line
    bar.close()
    assert stream.getvalue().splitlines() == [
        "x:   0% of 100, 0s elapsed",
        "x:  11% of 100, 35s elapsed, about 4m43s left",
        "x:  11% of 100, 35s elapsed, about 4m43s left",
    ]


def test_the_engine_shows_no_second_bar_under_a_listener(monkeypatch, capsys):
    monkeypatch.setattr(engine, "PROGRESS_MIN_WORK", 1)  # every run "long"
    learner = ms.LinearLearner(ms.sgd(0.01), 20)
    ms.run(learner, ms.problems.weight_flipping(), steps=1_000, record_every=500)
    assert capsys.readouterr().err  # its own bar, without a listener
    calls = []
    with engine.progress_listener(calls.append):
        ms.run(learner, ms.problems.weight_flipping(), steps=1_000, record_every=500)
    assert capsys.readouterr().err == ""
    assert sum(calls) == 1_000


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_a_bar_and_a_log_gets_lines():
    assert isinstance(progress_bar(10, stream=io.StringIO()), LogProgress)
    bar = progress_bar(10, stream=Terminal())
    assert not isinstance(bar, LogProgress)
    bar.close()


@pytest.mark.parametrize("seconds, text", [(0.4, "0s"), (42, "42s"), (185, "3m05s"),
                                           (3720, "1h02m")])
def test_duration(seconds, text):
    assert duration(seconds) == text

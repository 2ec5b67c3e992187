"""A shard whose process is killed (SIGKILL) mid-way continues from its last checkpoint when it is
computed again, and stores the same table, byte for byte, as an uninterrupted run."""

import json
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

import metastep as ms
from metastep.engine import progress_listener
from metastep.experiments import Budget, Experiment, Shard
from metastep.report import RunDirectory, run_experiment

SCRIPT = textwrap.dedent('''
    """A one-shard experiment whose shard runs 20 compiled chunks, slowed down so that the test
    can kill it in the middle; it counts the chunks it computes in chunks.txt."""
    import sys, time
    from pathlib import Path
    import pandas as pd
    import metastep as ms
    from metastep.engine import progress_listener
    from metastep.experiments import Budget, Experiment, Shard
    from metastep.report import RunDirectory, run_experiment

    directory = Path(sys.argv[1])

    def note_chunk(lane_steps):
        with open(directory / "chunks.txt", "a") as file:
            file.write(f"{lane_steps}\\n")
        time.sleep(0.15)

    def compute():
        learner = ms.LinearLearner(ms.idbd(0.01, 0.05), 20)
        with progress_listener(note_chunk):
            result = ms.run(learner, ms.problems.weight_flipping(), steps=40_000,
                            record_every=100, chunk_steps=2_000, progress=False)
        return pd.DataFrame({"method": "idbd", "seed": 0, "step": result.steps,
                             "squared_error": result.squared_error})

    budget = Budget(steps=40_000, seeds=1)
    experiment = Experiment(
        name="long-shard", description="one long shard",
        budgets=dict.fromkeys(("smoke", "quick", "full"), budget),
        shards=lambda budget: [Shard("run", compute, {"steps": 40_000}, 40_000.0)],
        summarize=lambda tables, budget: {}, figures=lambda tables, budget: {},
        published=[], explanation="")
    run_experiment(RunDirectory(directory / "run"), experiment, budget, progress=False,
                   checkpoint_every=0.0)
''')


def start(directory):
    return subprocess.Popen([sys.executable, str(directory.parent / "shard.py"), str(directory)])


def chunks(directory):
    path = directory / "chunks.txt"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


@pytest.mark.slow
def test_a_killed_shard_continues_from_its_checkpoint(tmp_path):
    (tmp_path / "shard.py").write_text(SCRIPT)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    for directory in (whole, killed):
        directory.mkdir()
    assert start(whole).wait(timeout=300) == 0
    assert chunks(whole) == [2_000] * 20

    process = start(killed)
    checkpoints = killed / "run" / "checkpoints" / "long-shard"
    deadline = time.monotonic() + 300
    while len(chunks(killed)) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before_kill = len(chunks(killed))
    assert 5 <= done_before_kill < 20
    assert list(checkpoints.glob("*/*.npz"))

    assert start(killed).wait(timeout=300) == 0
    resumed = chunks(killed)[done_before_kill:]
    # The rerun reported the saved chunks at once, then computed only the others.
    assert resumed[0] >= 2_000 * (done_before_kill - 1) and sum(resumed) == 40_000
    assert len(resumed) < 20
    stored = "run/results/long-shard/run.parquet"
    assert (whole / stored).read_bytes() == (killed / stored).read_bytes()
    assert not list(checkpoints.glob("*/*.npz"))  # removed once the shard is stored
    config = json.loads((killed / "run/config.json").read_text())
    assert "run" in config["experiments"]["long-shard"]["ran_on"]


class Stop(Exception):
    pass


def test_a_shard_stopped_in_the_runner_continues_from_its_checkpoint(tmp_path):
    """In process: the runner gives each shard its checkpoint directory; a shard stopped after 3
    of its 5 chunks continues from there, and the directory is removed once it is stored."""
    computed = []

    def compute():
        learner = ms.LinearLearner(ms.idbd(0.01, 0.05), 20)
        result = ms.run(learner, ms.problems.weight_flipping(), steps=2_000, record_every=100,
                        chunk_steps=400, progress=False)
        return pd.DataFrame({"method": "idbd", "seed": 0, "step": result.steps,
                             "squared_error": result.squared_error})

    def count(lane_steps):
        computed.append(lane_steps)
        if stop_after and len(computed) == stop_after:
            raise Stop

    budget = Budget(steps=2_000, seeds=1)
    experiment = Experiment(
        name="short-shard", description="one shard", budgets=dict.fromkeys(
            ("smoke", "quick", "full"), budget),
        shards=lambda budget: [Shard("run", compute, {}, 2_000.0)],
        summarize=lambda tables, budget: {}, figures=lambda tables, budget: {},
        published=[], explanation="")
    run_dir = RunDirectory(tmp_path / "run")
    stop_after = 3
    with progress_listener(count), pytest.raises(Stop):
        run_experiment(run_dir, experiment, budget, progress=False, checkpoint_every=0.0)
    assert list((tmp_path / "run/checkpoints/short-shard").glob("*/*.npz"))
    stop_after, computed = None, []
    with progress_listener(count):
        run_experiment(run_dir, experiment, budget, progress=False, checkpoint_every=0.0)
    assert computed == [1_200, 400, 400]  # 3 chunks restored at once, 2 computed
    uninterrupted = compute()
    pd.testing.assert_frame_equal(
        run_dir.read_shard("short-shard", "run").drop(columns="experiment"), uninterrupted,
        check_exact=True)
    assert not list((tmp_path / "run/checkpoints/short-shard").iterdir())

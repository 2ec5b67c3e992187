"""A toy experiment that counts its shard computations."""

import collections
import functools

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from metastep import experiments
from metastep.experiments import Budget, Experiment, Published, Shard

SHARD_NAMES = ("part-0", "part-1", "part-2")


def make_toy_experiment(counter: collections.Counter, fail_on: str | None = None) -> Experiment:
    """Three shards of a small tidy table; ``counter[shard]`` counts the calls of ``compute``;
    the shard ``fail_on`` raises instead of returning."""

    def compute(shard: str, budget: Budget) -> pd.DataFrame:
        counter[shard] += 1
        if shard == fail_on:
            raise RuntimeError(f"{shard} failed")
        steps = np.arange(1, budget.steps + 1)
        return pd.concat([
            pd.DataFrame({"method": "lms", "step_size": 0.1, "seed": seed, "step": steps,
                          "squared_error": 1.0 + seed + 1.0 / steps})
            for seed in budget.seed_list
        ], ignore_index=True)

    def shards(budget: Budget) -> list[Shard]:
        return [Shard(name, functools.partial(compute, name, budget),
                      {"steps": budget.steps, "seeds": budget.seed_list},
                      work=budget.steps * budget.seeds)
                for name in SHARD_NAMES]

    def summarize(tables, budget):
        table = pd.concat(tables.values())
        return {"lms": {"best_mse": float(table["squared_error"].mean()), "signature": 0.5,
                        "diverged": float("nan")}}

    def figures(tables, budget):
        figure = Figure()
        axes = figure.subplots()
        table = tables["part-0"]
        axes.plot(table["step"], table["squared_error"], label="LMS")
        axes.set_xlabel("step")
        axes.set_ylabel("squared error")
        axes.legend()
        return {"learning-curve": figure}

    return Experiment(
        name="toy",
        description="A toy experiment for the tests",
        budgets={name: Budget(steps=5, seeds=2) for name in experiments.BUDGET_NAMES},
        shards=shards,
        summarize=summarize,
        figures=figures,
        published=[Published("lms.best_mse", 1.5, "a paper, Table 1"),
                   Published("lms.signature", "about one half", "a talk")],
        explanation="A toy: **three** shards of `squared_error`.\n\n- one\n- two",
    )

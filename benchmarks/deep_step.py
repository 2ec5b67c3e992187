"""Deep step speed: each step-size method against optax.adam on the 784-300-150-10 MLP.

One training step is what the engine runs: ``DeepLearner.step`` (forward, loss, gradient, the
method's curvature signals, the method's update), cross-entropy on 10 classes, scanned over a
block of steps in one compiled call, so per-call dispatch is amortized as in ``ms.run``. Every
method is timed in the same process, in interleaved rounds (the median round counts), at batch 1
and batch 64, and reported as microseconds per step, as the ratio to ``optax.adam`` and with the
loss at the end (random inputs and labels: a check that no run diverged, not a score).

Targets (issue 4): Hessian-free variants (curvature "none") ≤ 1.3× Adam; Gauss-Newton curvature
≤ 2.5× Adam.

The last lines time two elementwise passes over all the parameters, in the same process: ``exp``
(which IDBD, Autostep and MetaOptimize's per-weight step sizes need once per weight per step) and
a multiply-add (the cost of one more array pass). On XLA CPU a per-weight ``exp`` costs several
array passes, which is where the per-weight methods' time above Adam's goes.

    python benchmarks/deep_step.py [--steps 2000] [--batch-steps 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import metastep as ms

SIZES = (784, 300, 150, 10)


def methods():
    """(name, method, curvature source): the reference first."""
    return [
        ("optax.adam", optax.adam(1e-3), "none"),
        ("ms.adam", ms.adam(1e-3), "none"),
        ("idbd", ms.idbd(0.01, 0.01), "none"),
        ("idbd", ms.idbd(0.01, 0.01), "gauss_newton"),
        ("idbd tensor", ms.idbd(0.01, 0.01, granularity="tensor"), "gauss_newton"),
        ("idbd", ms.idbd(0.01, 0.01), "hutchinson"),
        ("autostep fan_in", ms.autostep(0.01, 0.01, unit_axes="fan_in"), "none"),
        ("autostep fan_in", ms.autostep(0.01, 0.01, unit_axes="fan_in"), "gauss_newton"),
        ("smd (C v = 0)", ms.smd(0.01, 0.01), "none"),
        ("smd (G v)", ms.smd(0.01, 0.01), "gauss_newton"),
        ("smd (H v)", ms.smd(0.01, 0.01), "hvp"),
        # β_hd = 1e-3 (the paper's, for smaller models) diverges here: the dot sums 282,160 terms.
        ("hypergradient", ms.hypergradient(1e-5, 1e-3), "none"),
        ("adam_hypergradient", ms.adam_hypergradient(1e-7, 1e-3), "none"),
        ("metaoptimize adam/adam scalar", ms.metaoptimize("adam", "adam"), "none"),
        ("metaoptimize adam/adam weight", ms.metaoptimize("adam", "adam", granularity="weight"),
         "none"),
        ("metaoptimize sgd_momentum/lion tensor",
         ms.metaoptimize("sgd_momentum", "lion", granularity="tensor"), "none"),
    ]


def compiled_block(learner):
    """``(state, xs, ys) -> state`` over a block of steps, compiled."""

    def block(state, xs, ys):
        def body(state, xy):
            state, output = learner.step(state, *xy)
            return state, output.metrics["loss"]

        state, losses = jax.lax.scan(body, state, (xs, ys))
        return state, losses[-1]

    return jax.jit(block)


def elementwise_pass(function, params, steps):
    """Seconds per application of ``function`` to every parameter, scanned like a training block."""

    def block(tree):
        def body(tree, _):
            return jax.tree.map(function, tree), None

        return jax.lax.scan(body, tree, None, length=steps)[0]

    block = jax.jit(block)
    jax.block_until_ready(block(params))
    start = time.perf_counter()
    jax.block_until_ready(block(params))
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="steps per timed block, batch 1")
    parser.add_argument("--batch-steps", type=int, default=200, help="steps per block, batch 64")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    model = ms.deep.mlp(SIZES)
    rng = np.random.default_rng(0)
    for batch_size, steps in ((1, args.steps), (64, args.batch_steps)):
        shape = (steps, SIZES[0]) if batch_size == 1 else (steps, batch_size, SIZES[0])
        xs = jnp.asarray(rng.random(shape), jnp.float32)
        ys = jnp.asarray(rng.integers(0, SIZES[-1], shape[:-1]))
        entries = []
        for name, method, curvature in methods():
            learner = ms.deep.DeepLearner(model, method, loss="cross_entropy", curvature=curvature)
            block = compiled_block(learner)
            state = learner.init(jax.random.PRNGKey(0))
            start = time.perf_counter()
            state, loss = block(state, xs, ys)
            loss.block_until_ready()
            entries.append({"name": name, "curvature": curvature, "block": block, "state": state,
                            "compile": time.perf_counter() - start, "times": []})
        for _ in range(args.rounds):
            for entry in entries:
                start = time.perf_counter()
                entry["state"], loss = entry["block"](entry["state"], xs, ys)
                loss.block_until_ready()
                entry["times"].append((time.perf_counter() - start) / steps)
                entry["loss"] = float(loss)
        reference = float(np.median(entries[0]["times"]))
        if batch_size == 1:
            adam_batch_1 = reference
        print(f"\nbatch {batch_size}: median of {args.rounds} blocks of {steps} steps")
        print(f"{'method':38s} {'curvature':13s} {'µs/step':>8s} {'× adam':>7s} "
              f"{'compile s':>9s} {'loss':>6s}")
        for entry in entries:
            seconds = float(np.median(entry["times"]))
            print(f"{entry['name']:38s} {entry['curvature']:13s} {1e6 * seconds:8.1f} "
                  f"{seconds / reference:7.2f} {entry['compile']:9.1f} {entry['loss']:6.2f}")

    # Values in (-1, 0]: exp(-x²) and the multiply-add stay bounded over many iterations.
    params = jax.tree.map(lambda p: jnp.asarray(rng.random(p.shape) - 0.5, jnp.float32),
                          model.init(jax.random.PRNGKey(0)))
    count = sum(p.size for p in jax.tree.leaves(params))
    print(f"\nelementwise over all {count:,} parameters, per step, and as a fraction of "
          "optax.adam's batch-1 step")
    for name, function in (("exp", lambda p: jnp.exp(-p * p)),
                           ("multiply-add", lambda p: 0.999 * p + 1e-4)):
        seconds = elementwise_pass(function, params, args.steps)
        print(f"{name:38s} {1e6 * seconds:8.1f} µs {seconds / adam_batch_1:7.2f}")


if __name__ == "__main__":
    main()

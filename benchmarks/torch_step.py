"""PyTorch step speed: each metastep.torch optimizer against torch.optim.Adam(foreach=True) on the
784-300-150-10 MLP.

One training step is what a PyTorch user runs: ``zero_grad``, the forward pass, the loss and its
backward pass, then ``optimizer.step``; cross-entropy on 10 classes. An optimizer that reads the
curvature gets it from ``mst.Curvature`` (its extra backward pass is part of the step, as the
curvature is in benchmarks/deep_step.py); one that reads none, as Adam, runs a plain
``loss.backward()`` ("-"); IDBD "none" is IDBD given zero curvature by ``mst.Curvature``, and
"gauss_newton product" is SMD with ``Curvature(..., diagonal=False)``, which skips the diagonal
that SMD does not read (one backward pass less); "NormalizedIDBD foreach=False" is its
one-tensor-at-a-time implementation (the others have only the multi-tensor one); "MetaOptimize
base/meta" is that base and meta optimizer with one step size for all weights (the default
granularity), "weight" with one per weight. Every optimizer is timed in the same process, in
interleaved rounds (the median round counts), at batch 1 and batch 64, and reported as
microseconds per step, as the ratio to Adam and with the loss at the end (random inputs and
labels, new labels at every step: about ln 10 = 2.3 when all is well, a check that no run
diverged, not a score).

Targets (issue 13): Hessian-free variants ≤ 1.3× Adam; Gauss-Newton curvature ≤ 2.5× Adam. The
optimizers apply each operation to all parameters at once (torch._foreach_*).

    python benchmarks/torch_step.py [--steps 200] [--rounds 7] [--device cpu] [--threads N]
        [--clock wall|cpu]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import metastep.torch as mst

SIZES = (784, 300, 150, 10)
BATCHES = (1, 64)
INPUT_BATCHES = 100  # random input batches, cycled; the labels are drawn for every step
# "cpu": the process's CPU time, which the other processes of a loaded machine do not inflate
# (with --threads 1 on a CPU; it misses a GPU's time).
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def optimizers():
    """(name, optimizer factory, curvature source or None for a plain backward; "product": no
    diagonal): Adam first."""
    return [
        ("torch.optim.Adam foreach", lambda p: torch.optim.Adam(p, 1e-3, foreach=True), None),
        ("IDBD", lambda p: mst.IDBD(p, 0.01, 0.01), "none"),
        ("IDBD", lambda p: mst.IDBD(p, 0.01, 0.01), "gauss_newton"),
        ("Autostep fan_in", lambda p: mst.Autostep(p, 0.01, 0.01, unit_axes="fan_in"),
         "gauss_newton"),
        ("SMD (G v)", lambda p: mst.SMD(p, 0.01, 0.01), "gauss_newton"),
        ("SMD (G v), no diagonal", lambda p: mst.SMD(p, 0.01, 0.01), "gauss_newton product"),
        ("DeltaDelta", lambda p: mst.DeltaDelta(p), None),
        # β_hd = 1e-3 (the paper's, for smaller models) diverges here: the dot sums 282,160 terms.
        ("SGDHD", lambda p: mst.SGDHD(p, 1e-5, 1e-3), None),
        ("AdamHD", lambda p: mst.AdamHD(p, 1e-7, 1e-3), None),
        ("MetaOptimize adam/adam", lambda p: mst.MetaOptimize(p), None),
        ("MetaOptimize adam/adam weight", lambda p: mst.MetaOptimize(p, granularity="weight"),
         None),
        ("MetaOptimize adamw/adam", lambda p: mst.MetaOptimize(p, "adamw"), None),
        ("MetaOptimize sgd/sgd", lambda p: mst.MetaOptimize(p, "sgd", "sgd"), None),
        ("MetaOptimize sgd_momentum/adam", lambda p: mst.MetaOptimize(p, "sgd_momentum"), None),
        ("MetaOptimize rmsprop/adam", lambda p: mst.MetaOptimize(p, "rmsprop"), None),
        ("MetaOptimize lion/lion", lambda p: mst.MetaOptimize(p, "lion", "lion"), None),
        ("NormalizedIDBD", lambda p: mst.NormalizedIDBD(p), "none"),
        ("NormalizedIDBD", lambda p: mst.NormalizedIDBD(p), "gauss_newton"),
        ("NormalizedIDBD foreach=False", lambda p: mst.NormalizedIDBD(p, foreach=False), "none"),
    ]


def mlp(device):
    layers = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        layers += [torch.nn.Linear(fan_in, fan_out, device=device), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def make_step(name, make_optimizer, source, batch, device, steps):
    """A function running one training step, each on the next batch of a random stream of
    ``steps`` steps, and the loss of the last one."""
    torch.manual_seed(0)
    model = mlp(device)
    optimizer = make_optimizer(model.parameters())
    # Labels drawn afresh at every step, so nothing can be learned: repeated examples would be
    # learned to a loss of 0, and the tiny (subnormal) gradients and moments that follow make a
    # CPU's arithmetic many times slower.
    inputs_pool = torch.randn(INPUT_BATCHES, batch, SIZES[0], device=device)
    labels_stream = torch.randint(0, SIZES[-1], (steps, batch), device=device)
    curvature = None if source is None else mst.Curvature(
        model, "cross_entropy", source.split()[0], diagonal="product" not in source)
    last = {"step": 0}

    def step():
        inputs = inputs_pool[last["step"] % INPUT_BATCHES]
        labels = labels_stream[last["step"] % steps]
        last["step"] += 1
        optimizer.zero_grad()
        if curvature is None:
            loss = torch.nn.functional.cross_entropy(model(inputs), labels)
            loss.backward()
            optimizer.step()
        else:
            loss, diagonal = curvature(inputs, labels)
            optimizer.step(curvature=diagonal,
                           curvature_vector_product=curvature.vector_product)
        last["loss"] = loss

    return step, last


def time_steps(step, steps, device, clock):
    step()  # first-call costs out of the timing
    if device == "cuda":
        torch.cuda.synchronize()
    start = clock()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return (clock() - start) / steps * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (the median)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch's CPU threads (default: torch's own choice)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall time, or the process's CPU time (a loaded CPU machine)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.device}, {torch.get_num_threads()} threads, "
          f"MLP {SIZES}, {args.steps} steps x {args.rounds} rounds, {args.clock} clock, load "
          f"average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for batch in BATCHES:
        steps = args.rounds * (args.steps + 1)
        runs = [(name, source, *make_step(name, make, source, batch, args.device, steps))
                for name, make, source in optimizers()]
        times = {index: [] for index in range(len(runs))}
        for _ in range(args.rounds):
            for index, (_, _, step, _) in enumerate(runs):
                times[index].append(time_steps(step, args.steps, args.device, CLOCKS[args.clock]))
        reference = statistics.median(times[0])
        print(f"\nbatch {batch}")
        print(f"{'optimizer':31s} {'curvature':20s} {'us/step':>9s} {'x Adam':>7s} {'loss':>8s}")
        for index, (name, source, _, last) in enumerate(runs):
            median = statistics.median(times[index])
            print(f"{name:31s} {source or '-':20s} {median:9.0f} {median / reference:7.2f} "
                  f"{last['loss'].item():8.3f}")


if __name__ == "__main__":
    main()

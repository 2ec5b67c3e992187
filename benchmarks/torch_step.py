"""PyTorch step speed: each metastep.torch optimizer against torch.optim.Adam(foreach=True) on the
784-300-150-10 MLP.

One training step is what a PyTorch user runs: ``zero_grad``, the forward pass, the loss and its
backward pass with the curvature signals of ``mst.Curvature`` (a plain ``loss.backward()`` for
Adam), then ``optimizer.step``; cross-entropy on 10 classes. Every optimizer is timed in the same
process, in interleaved rounds (the fastest round counts: other load only slows a round down), at
batch 1 and batch 64, and reported as microseconds per step, as the ratio to Adam and with the
loss at the end (random inputs and labels: a check that no run diverged, not a score).

Targets (issue 13): Hessian-free variants (curvature "none") ≤ 1.3× Adam; Gauss-Newton curvature
≤ 2.5× Adam. The optimizers apply each operation to all parameters at once (torch._foreach_*).

    python benchmarks/torch_step.py [--steps 200] [--rounds 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch

import metastep.torch as mst

SIZES = (784, 300, 150, 10)
BATCHES = (1, 64)


def optimizers():
    """(name, optimizer factory, curvature source or None for a plain backward): Adam first."""
    return [
        ("torch.optim.Adam foreach", lambda p: torch.optim.Adam(p, 1e-3, foreach=True), None),
        ("IDBD", lambda p: mst.IDBD(p, 0.01, 0.01), "none"),
        ("IDBD", lambda p: mst.IDBD(p, 0.01, 0.01), "gauss_newton"),
        ("Autostep fan_in", lambda p: mst.Autostep(p, 0.01, 0.01, unit_axes="fan_in"),
         "gauss_newton"),
        ("SMD (G v)", lambda p: mst.SMD(p, 0.01, 0.01), "gauss_newton"),
        ("DeltaDelta", lambda p: mst.DeltaDelta(p), "none"),
        # β_hd = 1e-3 (the paper's, for smaller models) diverges here: the dot sums 282,160 terms.
        ("SGDHD", lambda p: mst.SGDHD(p, 1e-5, 1e-3), "none"),
        ("AdamHD", lambda p: mst.AdamHD(p, 1e-7, 1e-3), "none"),
        ("MetaOptimize adam/adam", lambda p: mst.MetaOptimize(p), "none"),
    ]


def mlp(device):
    layers = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        layers += [torch.nn.Linear(fan_in, fan_out, device=device), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def make_step(name, make_optimizer, source, batch, device):
    """A function running one training step, and the loss of the last one."""
    torch.manual_seed(0)
    model = mlp(device)
    optimizer = make_optimizer(model.parameters())
    inputs = torch.randn(batch, SIZES[0], device=device)
    labels = torch.randint(0, SIZES[-1], (batch,), device=device)
    curvature = None if source is None else mst.Curvature(model, "cross_entropy", source)
    last = {}

    def step():
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


def time_steps(step, steps, device):
    step()  # first-call costs out of the timing
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (the fastest)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {args.device}, {torch.get_num_threads()} threads, "
          f"MLP {SIZES}, {args.steps} steps x {args.rounds} rounds")
    for batch in BATCHES:
        runs = [(name, source, *make_step(name, make, source, batch, args.device))
                for name, make, source in optimizers()]
        times = {index: [] for index in range(len(runs))}
        for _ in range(args.rounds):
            for index, (_, _, step, _) in enumerate(runs):
                times[index].append(time_steps(step, args.steps, args.device))
        reference = min(times[0])
        print(f"\nbatch {batch}")
        print(f"{'optimizer':28s} {'curvature':13s} {'us/step':>9s} {'x Adam':>7s} {'loss':>8s}")
        for index, (name, source, _, last) in enumerate(runs):
            fastest = min(times[index])
            print(f"{name:28s} {source or '-':13s} {fastest:9.0f} {fastest / reference:7.2f} "
                  f"{last['loss'].item():8.3f}")


if __name__ == "__main__":
    main()

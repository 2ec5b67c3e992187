"""``mst.MetaOptimize``'s two forms of a step: on a CPU, not compiled, it reads the step counts
and a shared ``α`` as numbers once per step; elsewhere (other devices, ``torch.compile``) it keeps
them in one-element tensors. Both give the same steps to rounding."""

import pytest

torch = pytest.importorskip("torch")
mst = pytest.importorskip("metastep.torch")
from metastep.torch import metaoptimize  # noqa: E402  (needs torch)


def train(make, steps=12):
    """A 3-4-1 tanh MLP in float64 trained online with squared loss; its parameters and step
    sizes at the end."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4, dtype=torch.float64), torch.nn.Tanh(),
                                torch.nn.Linear(4, 1, dtype=torch.float64))
    optimizer = make(model.parameters())
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(5, 3, generator=generator, dtype=torch.float64)
        optimizer.zero_grad()
        loss = 0.5 * (model(x) - torch.sin(x.sum(dim=1, keepdim=True))).square().mean()
        loss.backward()
        optimizer.step()
    return list(model.parameters()) + mst.step_sizes(optimizer)


@pytest.mark.parametrize("base, meta, granularity", [
    ("adam", "adam", "scalar"), ("adamw", "adam", "tensor"), ("adam", "lion", "weight"),
    ("sgd", "adam", "scalar"),
])
def test_numbers_and_tensors_give_the_same_steps(monkeypatch, base, meta, granularity):
    def make(params):
        return mst.MetaOptimize(params, base, meta, 1e-2, 1e-2, granularity=granularity,
                                discount=0.9)

    kinds = []
    adam_terms = metaoptimize._adam_terms
    monkeypatch.setattr(metaoptimize, "_adam_terms", lambda *args: (
        kinds.append(type(args[4][0])), adam_terms(*args))[1])
    with_numbers = train(make)
    assert set(kinds) == {int}
    kinds.clear()
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    with_tensors = train(make)
    assert set(kinds) == {torch.Tensor}
    for a, b in zip(with_numbers, with_tensors):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)
    assert not torch.equal(with_numbers[-1], torch.full_like(with_numbers[-1], 1e-2))  # learned

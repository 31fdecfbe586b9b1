"""The researcher's own model and data in a Flower federation run by desgd
(docs/federation.md, "Your own model and data").

Flower apps keep their model and data in a task module (Flower's templates call
it `task.py`). Name yours in the run config, `task = "my_app.task"`, and
desgd's ServerApp and ClientApp use it in place of desgd's CNN and
Fashion-MNIST. The module must be importable on the SuperLink's machine and on
every SuperNode, and define:

    CLASSES: int
        C, the labels are 0..C-1
    DATA: str
        one line on the data, recorded in the trace
    def model() -> torch.nn.Module
        the same initial parameters at every call (seed it)
    def client_data(worker: int, workers: int) -> (inputs, labels)
        worker `worker`'s local data (honest workers 0..n-1, then Byzantine
        ones under a client-side attack), labels an int64 tensor
    def test_data() -> (inputs, labels)
        the server's evaluation set

desgd's live server then never computes with the model: it aggregates and steps
the flat vector of `model().parameters()` (the trace's `engine.model` names the
tensors), takes x_0 from `model()`, the classes each honest worker holds from
the labels present in its `client_data` (declared by the client at
registration, recorded in the trace), and the evaluation of x_{t+1} (accuracy
and mean cross-entropy on `test_data()`) from the ServerApp. A client computes
Algorithm 1's class momenta with desgd.torch_client on its own data; a
Byzantine client under label-flip trains on its own data with labels y ↦ C−1−y,
and must hold every class.
"""

from __future__ import annotations

import importlib
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["Task", "evaluate", "holdings", "load_task"]

REQUIRED = ("CLASSES", "DATA", "model", "client_data", "test_data")


class Task:
    """A loaded task module, checked for what desgd needs of it."""

    def __init__(self, name: str, module: ModuleType) -> None:
        missing = [a for a in REQUIRED if not hasattr(module, a)]
        if missing:
            raise ValueError(
                f"task {name!r} lacks {', '.join(missing)}"
                ' (docs/federation.md, "Your own model and data")'
            )
        self.name = name
        self.module = module
        self.classes = int(module.CLASSES)
        if self.classes < 2:
            raise ValueError(
                f"task {name!r}: CLASSES = {self.classes}, needs at least 2"
            )
        self.data = str(module.DATA)

    def model(self) -> Any:
        return self.module.model()

    def client_data(self, worker: int, workers: int) -> tuple[Any, Any]:
        inputs, labels = self.module.client_data(worker, workers)
        return inputs, self._labels(
            labels, f"client_data({worker}, {workers})"
        )

    def test_data(self) -> tuple[Any, Any]:
        inputs, labels = self.module.test_data()
        return inputs, self._labels(labels, "test_data()")

    def _labels(self, labels: Any, what: str) -> Any:
        import torch

        labels = torch.as_tensor(labels, dtype=torch.int64)
        if labels.numel() == 0:
            raise ValueError(f"task {self.name!r}: {what} holds no sample")
        if int(labels.min()) < 0 or int(labels.max()) >= self.classes:
            raise ValueError(
                f"task {self.name!r}: {what} has labels outside"
                f" 0..{self.classes - 1}"
            )
        return labels


@cache
def load_task(name: str) -> Task:
    """Imports the task module `name` (once per process)."""
    try:
        module = importlib.import_module(name)
    except ImportError as e:
        raise ValueError(
            f"task {name!r} does not import ({e}): put it on the SuperLink's"
            " and every SuperNode's PYTHONPATH"
        ) from None
    return Task(name, module)


def holdings(labels: Any) -> list[int]:
    """The classes a worker holds: the labels present in its data,
    increasing."""
    return sorted(int(c) for c in np.unique(np.asarray(labels)))


def evaluate(
    task: Task, x: np.ndarray, batch: int = 1024
) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of the flat parameters `x` on the task's
    test set."""
    import torch
    from torch.nn import functional as F

    from desgd.torch_client import load_flat_parameters

    module = _evaluation_model(task.name)
    load_flat_parameters(module, x)
    inputs, labels = _test_set(task.name)
    module.eval()
    correct, loss = 0, 0.0
    with torch.no_grad():
        for start in range(0, labels.shape[0], batch):
            logits = module(inputs[start : start + batch])
            target = labels[start : start + batch]
            loss += float(F.cross_entropy(logits, target, reduction="sum"))
            correct += int((logits.argmax(1) == target).sum())
    n = int(labels.shape[0])
    return correct / n, loss / n


@cache
def _evaluation_model(name: str) -> Any:
    return load_task(name).model()


@cache
def _test_set(name: str) -> tuple[Any, Any]:
    return load_task(name).test_data()

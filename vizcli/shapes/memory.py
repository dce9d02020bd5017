"""Memory: parameters and buffers per dtype, and one training step counted from the autograd graph.

A training step holds the parameters, their gradients, the optimizer's state and the
activations autograd saved for backward. The last are not guessed from layer outputs: a
forward pass in train mode builds the autograd graph, and every tensor its nodes saved
(``grad_fn._saved_*``) is counted once per storage, parameters excluded (they are counted as
parameters). Sizes are measured in float32 and scaled to ``dtype`` for floating tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
OPTIMIZER_STATE = {"sgd": 1, "adam": 2, "adamw": 2}  # tensors of parameter size kept per parameter (SGD: momentum)
MEASURED_BYTES = 4  # the pass runs in float32


@dataclass(frozen=True)
class TrainingStep:
    """Bytes one training step holds (batch ``batch_size``, optimizer ``optimizer``), in ``dtype``."""

    batch_size: int
    optimizer: str
    parameters: int
    gradients: int
    optimizer_state: int
    saved_activations: int

    @property
    def total(self) -> int:
        return self.parameters + self.gradients + self.optimizer_state + self.saved_activations

    def as_dict(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "optimizer": self.optimizer, "parameters": self.parameters,
                "gradients": self.gradients, "optimizer_state": self.optimizer_state,
                "saved_activations": self.saved_activations, "total": self.total}


def parameter_bytes(model: Any, dtype: str) -> tuple[int, int]:
    """(parameter bytes, buffer bytes) of ``model`` stored in ``dtype`` (integer buffers keep their size)."""
    size = DTYPE_BYTES[dtype]
    params = sum(p.numel() * size for p in model.parameters())
    buffers = sum(b.numel() * (size if b.is_floating_point() else b.element_size()) for b in model.buffers())
    return params, buffers


def saved_activation_bytes(model: Any, example: Any, dtype: str = "float32") -> int:
    """Bytes of the tensors autograd saves for backward in one train-mode forward pass of ``example``.

    Walks the graph from the output, collecting each node's ``_saved_*`` tensors once per storage;
    the model's own parameters are excluded. The model's train/eval mode is restored.
    """
    import torch

    from vizcli.common.errors import BadInput, error_text

    was_training = model.training
    model.train()
    try:
        try:
            with torch.enable_grad():
                output = model(example)
        except (RuntimeError, TypeError, ValueError, IndexError, KeyError, AttributeError, NotImplementedError) as error:
            raise BadInput(f"the training-mode forward pass failed ({type(error).__name__}: {error_text(error, 160)}); "
                           "check that the input fits the model", parameter="train") from None
        roots = output_tensors(output)
        parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
        storages: dict[int, tuple[int, bool]] = {}
        seen: set[int] = set()
        stack = [tensor.grad_fn for tensor in roots if tensor.grad_fn is not None]
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            for tensor in _saved_tensors(node):
                storage = tensor.untyped_storage()
                if storage.data_ptr() not in parameters:
                    storages[storage.data_ptr()] = (storage.nbytes(), tensor.is_floating_point())
            stack.extend(next_node for next_node, _ in node.next_functions if next_node is not None)
    finally:
        model.train(was_training)
    scale = DTYPE_BYTES[dtype] / MEASURED_BYTES
    return int(sum(nbytes * scale if floating else nbytes for nbytes, floating in storages.values()))


def training_step(model: Any, example: Any, optimizer: str, dtype: str = "float32") -> TrainingStep:
    """The memory one training step of ``model`` on ``example`` (``Tensor[B, ...]``) holds, in ``dtype``."""
    params, _ = parameter_bytes(model, dtype)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad) * DTYPE_BYTES[dtype]
    return TrainingStep(
        batch_size=int(example.shape[0]),
        optimizer=optimizer,
        parameters=params,
        gradients=trainable,
        optimizer_state=OPTIMIZER_STATE[optimizer] * trainable,
        saved_activations=saved_activation_bytes(model, example, dtype),
    )


def output_tensors(output: Any) -> list[Any]:
    import torch

    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, (tuple, list)):
        return [item for part in output for item in output_tensors(part)]
    if isinstance(output, dict):
        return [item for part in output.values() for item in output_tensors(part)]
    return [value for value in vars(output).values() if isinstance(value, torch.Tensor)] if hasattr(output, "__dict__") else []


def _saved_tensors(node: Any) -> list[Any]:
    import torch

    found: list[Any] = []
    for name in dir(node):
        if not name.startswith("_saved_"):
            continue
        try:
            value = getattr(node, name)
        except RuntimeError:  # already freed, or not materialised for this node
            continue
        values = value if isinstance(value, (tuple, list)) else (value,)
        found.extend(item for item in values if isinstance(item, torch.Tensor))
    return found

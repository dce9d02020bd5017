"""What a forward pass is called with: one tensor, several, keyword arguments, dicts of tensors.

``as_model_input`` reads torchinfo's ``input_data`` convention: a tensor is the one argument, a list or
tuple is the positional arguments, a dict is the keyword arguments (a dict *argument* goes inside a
list: ``[{"image": …, "mask": …}]``). ``parse_input_specs`` reads the command line's
``--input-size [NAME=]SHAPE[:DTYPE[:HIGH]]`` (repeatable; ``NAME.KEY=`` builds a dict argument; integer
inputs are seeded ids in ``[0, HIGH)``, 2 unless given).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from vizcli.common.errors import BadInput
from vizcli.common.sizes import MAX_INPUT_VALUES

INPUT_DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "bool")
_SPEC = re.compile(r"^(?:(?P<name>[A-Za-z_]\w*)(?:\.(?P<key>[A-Za-z_]\w*))?=)?(?P<shape>[0-9xX]+)"
                   r"(?::(?P<dtype>[a-z0-9]+)(?::(?P<high>[0-9]+))?)?$")
SPEC_FORM = "[NAME=]SHAPE[:DTYPE[:HIGH]], e.g. 3x224x224, mask=32x32:bool or batch.ids=16:int64:30522"


@dataclass
class ModelInput:
    """Positional and keyword arguments of one forward pass (tensors, or lists, tuples and dicts of them).

    ``model(*args, **kwargs)`` is the call; every tensor is a whole batch (batch axis included).
    """

    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def call(self, model: Any) -> Any:
        return model(*self.args, **self.kwargs)

    def tensors(self) -> dict[str, Any]:
        """Every input tensor by where it goes: ``"arg0"``, ``"arg1"``, ``"mask"``, ``"batch.image"``, ``"arg0.2"``."""
        found: dict[str, Any] = {}
        for position, value in enumerate(self.args):
            _collect(f"arg{position}", value, found)
        for name, value in self.kwargs.items():
            _collect(name, value, found)
        return found

    @property
    def first(self) -> Any:
        """The first input tensor (the one the tables' "input" names), or None."""
        return next(iter(self.tensors().values()), None)

    @property
    def shape(self) -> tuple[int, ...]:
        first = self.first
        return tuple(first.shape) if first is not None else ()

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(tensor.shape) for name, tensor in self.tensors().items()}

    def describe(self) -> str:
        """``1×3×224×224`` for one tensor; ``x1 1×300, x2 1×300 (int64)`` for several."""
        tensors = self.tensors()
        if len(tensors) == 1 and not self.kwargs:
            return "×".join(map(str, self.shape))
        return ", ".join(f"{name} {'×'.join(map(str, t.shape))}" + ("" if t.is_floating_point() else f" ({str(t.dtype)[6:]})")
                         for name, t in tensors.items())

    def to(self, device: Any) -> ModelInput:
        return ModelInput(tuple(_move(value, device) for value in self.args),
                          {name: _move(value, device) for name, value in self.kwargs.items()})

    @property
    def is_cuda(self) -> bool:
        return any(t.is_cuda for t in self.tensors().values())


def _collect(prefix: str, value: Any, found: dict[str, Any]) -> None:
    import torch

    if isinstance(value, torch.Tensor):
        found[prefix] = value
    elif isinstance(value, dict):
        for key, item in value.items():
            _collect(f"{prefix}.{key}", item, found)
    elif isinstance(value, (list, tuple)):
        for position, item in enumerate(value):
            _collect(f"{prefix}.{position}", item, found)


def _move(value: Any, device: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {key: _move(item, device) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_move(item, device) for item in value) if not hasattr(value, "_fields") else \
            type(value)(*(_move(item, device) for item in value))
    return value


def as_model_input(input_data: Any, **kwargs: Any) -> ModelInput:
    """torchinfo's ``input_data``: a tensor (one argument), a list/tuple (the positional arguments) or a dict
    (the keyword arguments); ``kwargs`` are added as keyword arguments."""
    import torch

    if isinstance(input_data, ModelInput):
        return ModelInput(input_data.args, {**input_data.kwargs, **kwargs})
    if isinstance(input_data, torch.Tensor):
        return ModelInput((input_data,), dict(kwargs))
    if isinstance(input_data, (list, tuple)):
        return ModelInput(tuple(input_data), dict(kwargs))
    if isinstance(input_data, dict):
        return ModelInput((), {**input_data, **kwargs})
    if input_data is None and kwargs:
        return ModelInput((), dict(kwargs))
    raise BadInput("give a tensor, a list of the positional arguments, or a dict of the keyword arguments",
                   parameter="input_data", value=type(input_data).__name__)


@dataclass(frozen=True)
class InputSpec:
    """One ``--input-size`` item: where the tensor goes, its per-sample shape, its dtype."""

    name: str | None  # None: the next positional argument
    key: str | None  # a key of the dict argument ``name``
    shape: tuple[int, ...]
    dtype: str = "float32"
    high: int = 2  # integer inputs: seeded ids in [0, high)


def parse_input_specs(texts: list[str]) -> list[InputSpec]:
    """``["3x32x32", "mask=32x32:bool", "batch.ids=16:int64"]`` → specs (one sample each, batch 1 added later)."""
    specs = []
    for text in texts:
        match = _SPEC.match(text.strip())
        if match is None:
            raise BadInput(f"give {SPEC_FORM}", parameter="input_size", value=text)
        try:
            shape = tuple(int(part) for part in match.group("shape").lower().split("x"))
        except ValueError:
            raise BadInput("sizes are whole numbers separated by x (3x224x224)", parameter="input_size", value=text) from None
        if not shape or min(shape) < 1 or math.prod(shape) > MAX_INPUT_VALUES:
            raise BadInput("each size at least 1, and at most 3x4096x4096 values in all", parameter="input_size", value=text)
        dtype = (match.group("dtype") or "float32").lower()
        if dtype not in INPUT_DTYPES:
            raise BadInput(f"dtype {dtype!r}: use one of {', '.join(INPUT_DTYPES)}", parameter="input_size", value=text)
        high = int(match.group("high") or 2)
        if high < 1 or (match.group("high") and dtype.startswith(("float", "bfloat", "bool"))):
            raise BadInput("HIGH (ids drawn from [0, HIGH)) is for int64/int32 inputs, and at least 1", parameter="input_size",
                           value=text)
        specs.append(InputSpec(match.group("name"), match.group("key"), shape, dtype, high))
    named = [spec for spec in specs if spec.name is not None]
    for earlier, later in zip(specs, specs[1:]):
        if earlier.name is not None and later.name is None:
            raise BadInput(f"positional sizes come first ({earlier.name}=… is followed by one without a name)",
                           parameter="input_size", value=", ".join(texts))
    seen = set()
    for spec in named:
        where = (spec.name, spec.key)
        if where in seen or (spec.key is None and any(other.name == spec.name and other.key for other in named)):
            raise BadInput(f"{spec.name}{'.' + spec.key if spec.key else ''} is given twice", parameter="input_size",
                           value=spec.name)
        seen.add(where)
    return specs


def synthetic_input(specs: list[InputSpec], seed: int = 0) -> ModelInput:
    """Seeded tensors for ``specs``, a batch axis of 1 in front of each: normal noise for floating dtypes,
    ids in ``[0, spec.high)`` for integer ones, a seeded coin for bool."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for spec in specs:
        size = (1, *spec.shape)
        dtype = getattr(torch, spec.dtype)
        if dtype.is_floating_point:
            tensor = torch.randn(size, generator=generator).to(dtype)
        elif dtype == torch.bool:
            tensor = torch.rand(size, generator=generator) < 0.5
        else:
            tensor = torch.randint(0, spec.high, size, generator=generator, dtype=dtype)
        if spec.name is None:
            args.append(tensor)
        elif spec.key is None:
            kwargs[spec.name] = tensor
        else:
            kwargs.setdefault(spec.name, {})[spec.key] = tensor
    return ModelInput(tuple(args), kwargs)


def positional_for_graph(forward: Any, model_input: ModelInput) -> tuple | None:
    """The arguments in the order of ``forward``'s parameters, defaults filled (torch.fx's placeholders take them
    positionally); None when they cannot be ordered (``*args``/``**kwargs`` in the signature, or a bad call)."""
    import inspect

    try:
        signature = inspect.signature(forward)
    except (TypeError, ValueError):
        return None
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in signature.parameters.values()):
        return tuple(model_input.args) if not model_input.kwargs else None
    try:
        bound = signature.bind(*model_input.args, **model_input.kwargs)
    except TypeError:
        return None
    bound.apply_defaults()
    return tuple(bound.arguments.values())

"""Tracing a TorchScript model (``torch.jit.script``), which neither torch.fx nor forward hooks can enter.

The TorchScript interpreter still calls every ATen operator through the dispatcher, so the counter's
dispatch mode sees them all. Each operator that computes (views are skipped) is a row, owned by the
module whose parameters it reads (``fc1``: its ``addmm``), else named after the operator (``relu``).
Consecutive operators reading the same module's parameters are one row (a module's call).
"""

from __future__ import annotations

from typing import Any

from vizcli.shapes.hooks import first_tensor
from vizcli.shapes.inputs import ModelInput
from vizcli.shapes.records import LayerRecord, Trace, notify, trace_error_text


def module_kind(module: Any) -> str:
    """``Linear`` for a scripted ``nn.Linear`` (TorchScript keeps the original class name), else the class name."""
    return str(getattr(module, "original_name", "") or type(module).__name__)


def _owners(model: Any) -> tuple[dict[int, tuple[str, str, int]], dict[int, str]]:
    """Storage address → (module name, kind, its own parameters), and storage address → parameter name."""
    owners: dict[int, tuple[str, str, int]] = {}
    parameters: dict[int, str] = {}
    for name, module in model.named_modules():
        own = list(module.named_parameters(recurse=False))
        for key, parameter in own:
            address = parameter.untyped_storage().data_ptr()
            owners.setdefault(address, (name, module_kind(module), sum(p.numel() for _, p in own)))
            parameters.setdefault(address, f"{name}.{key}" if name else key)
    return owners, parameters


def _tensors(values: Any) -> list[Any]:
    import torch

    found = []
    for value in values:
        if isinstance(value, torch.Tensor):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend(_tensors(value))
    return found


def _is_view(func: Any) -> bool:
    """An operator whose output aliases its input without writing it (``t``, ``view``, ``select``)."""
    returns = func._schema.returns
    alias = returns[0].alias_info if returns else None
    return alias is not None and not alias.is_write


def trace_with_dispatch(model: Any, example: ModelInput, counter: Any, observers: tuple = ()) -> Trace:
    """One row per computing operator of ``model``'s forward on ``example``, owned by the module whose weights it reads."""
    from torch.utils._python_dispatch import TorchDispatchMode

    owners, parameter_names = _owners(model)
    records: list[LayerRecord] = []
    calls: dict[str, int] = {}
    seen_modules: set[str] = set()
    used: set[str] = set()
    last_owner: list[str | None] = [None]

    def _row(func: Any, args: tuple, kwargs: dict, out: Any) -> None:
        macs = counter.take()
        tensor = first_tensor(out)
        if _is_view(func) or tensor is None:
            if macs and records:
                records[-1].macs += macs
            return
        owner = None
        for argument in _tensors([*args, *kwargs.values()]):
            address = argument.untyped_storage().data_ptr()
            if address in owners:
                owner = owner or owners[address]
                used.add(parameter_names[address])
        operator = str(func._overloadpacket.__name__)
        if owner is not None and owner[0] == last_owner[0] and records:
            records[-1].macs += macs  # the same module's call, still running (a Linear's addmm after its t)
            records[-1].shape = tuple(tensor.shape)
            return
        module, kind, own = owner if owner is not None else (None, operator, 0)
        name = module or operator  # the root's own parameters: its name is ""
        last_owner[0] = module
        call = calls.get(name, 0)
        calls[name] = call + 1
        first_time = module is not None and name not in seen_modules
        seen_modules.add(name)
        records.append(LayerRecord(
            index=len(records), name=name, op=f"{kind} ({operator})" if module is not None else operator, kind=kind,
            shape=tuple(tensor.shape), dtype=str(tensor.dtype).replace("torch.", ""), params=own if first_time else 0,
            macs=macs, call=call))
        notify(observers, records[-1], tensor)

    class _Rows(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
            out = func(*args, **(kwargs or {}))
            _row(func, args, kwargs or {}, out)
            return out

    trace = Trace(records=records, method="operators", input_shape=example.shape)
    try:
        with _Rows():  # inside the counter's mode: it counts each operator before this one sees it
            trace.output = example.call(model)
    except Exception as error:
        trace.failed_at = records[-1].name if records else "forward"
        trace.error = trace_error_text(error)
    trace.used_parameters = used
    trace.fallback_reason = "a TorchScript model: torch.fx and forward hooks cannot enter it"
    return trace

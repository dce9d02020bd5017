"""Tracing with per-call forward hooks on leaf modules: for models ``torch.fx`` cannot trace.

A row per leaf module call; the torch functions a container's own code calls between its
children get rows too when they carry MACs or are a softmax (attention's matmuls and softmax, as in
Hugging Face's BERT), named after that container (``encoder.layer.0.attention.self.attention``),
with the shape that code sees. MACs no function row took count with the row before them.
"""

from __future__ import annotations

from typing import Any

from vizcli.shapes.records import LayerRecord, Trace, new_parameters, notify, trace_error_text
from vizcli.shapes.wording import describe_module

# torch functions a container's own code calls that get rows when hooks trace (they carry MACs, or are a softmax):
# the function's name → (row label, operation wording)
FUNCTIONAL_ROWS = {
    "scaled_dot_product_attention": ("attention", "softmax(QKᵀ/√d)·V"),
    "matmul": ("matmul", "matmul"), "__matmul__": ("matmul", "matmul"), "bmm": ("matmul", "matmul"),
    "baddbmm": ("matmul", "matmul"), "einsum": ("einsum", "einsum"), "linear": ("linear", "linear"),
    "softmax": ("softmax", "softmax"), "_softmax": ("softmax", "softmax"),
}


def _function_mode() -> Any:
    from torch.overrides import TorchFunctionMode

    class FunctionRows(TorchFunctionMode):
        """Hands every torch function call to ``handle(func, args, kwargs)``."""

        def __init__(self, handle) -> None:
            super().__init__()
            self.handle = handle

        def __torch_function__(self, func, types, args=(), kwargs=None):
            return self.handle(func, args, kwargs or {})

    return FunctionRows


def first_tensor(value: Any) -> Any:
    """The first tensor in a module's output (a tensor, or tuples, lists and dicts of them), or None."""
    import torch

    if isinstance(value, torch.Tensor):
        return value
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (tuple, list)) else ()
    for item in items:
        found = first_tensor(item)
        if found is not None:
            return found
    return None


def trace_with_hooks(model, example, counter, observers: tuple = ()) -> Trace:
    """Trace ``model`` on ``example`` (a ``ModelInput``) with forward hooks; ``observers`` see each row's tensor."""
    import torch

    records: list[LayerRecord] = []
    calls: dict[str, int] = {}
    counted: set[int] = set()  # parameters already in a row's params (tied weights: once)
    handles = []
    names = {module: name for name, module in model.named_modules()}
    current: dict[str, str | None] = {"running": None}
    owners: list[str] = []  # the containers whose forward is running, innermost last
    leaf: list[Any] = []  # the leaf module running, if any: what its code runs is its own row's

    def _pre(module, args):
        current["running"] = names[module]
        _keep_functional_macs()
        leaf.append(module)

    def _keep_functional_macs():
        # MACs outside leaf modules that no function row took count with the row before them
        macs = counter.take()
        if macs and records:
            records[-1].macs += macs

    def _functional(func, args, kwargs):
        # a torch function a container's own code calls (attention's matmuls and softmax): a row when it
        # carries MACs or is a softmax, named after that container, with the shape the code sees
        if leaf:
            return func(*args, **kwargs)
        _keep_functional_macs()
        out = func(*args, **kwargs)
        macs = counter.take()
        function = getattr(func, "__name__", str(func))
        label, op = FUNCTIONAL_ROWS.get(function, (function.strip("_"), function.strip("_")))
        first = out[0] if isinstance(out, (tuple, list)) and out else out
        # a row for a known kind (attention, matmul, linear, softmax) or any function carrying MACs: known kinds get
        # a row whatever the counter saw, so every counter's run has the same rows (vizcli.shapes.compare)
        if (macs or function in FUNCTIONAL_ROWS) and isinstance(first, torch.Tensor):
            name = f"{owners[-1]}.{label}" if owners and owners[-1] else label
            call = calls.get(name, 0)
            calls[name] = call + 1
            records.append(LayerRecord(index=len(records), name=name, op=op, kind=label, shape=tuple(first.shape),
                                       dtype=str(first.dtype).replace("torch.", ""), params=0, macs=macs, call=call))
            notify(observers, records[-1], first)
        elif macs and records:
            records[-1].macs += macs
        return out

    def _enter(module, args):
        owners.append(names[module])

    def _leave(module, args, result):
        if owners:
            owners.pop()

    def _leaf_done(module, args, result):
        if leaf:
            leaf.pop()

    def _post(module, args, result):
        result = first_tensor(result)  # an LSTM's (output, (h, c)), an LSTMCell's (h, c): the first carries the row
        if result is None:
            return
        name = names[module]
        call = calls.get(name, 0)
        calls[name] = call + 1
        records.append(
            LayerRecord(
                index=len(records),
                name=name,
                op=describe_module(module),
                kind=type(module).__name__,
                shape=tuple(result.shape),
                dtype=str(result.dtype).replace("torch.", ""),
                params=new_parameters(module.parameters(), counted),
                macs=counter.take(),
                call=call,
            )
        )
        notify(observers, records[-1], result)

    for module in model.modules():
        if not list(module.children()):
            handles.append(module.register_forward_pre_hook(_pre))
            handles.append(module.register_forward_hook(_post))
            handles.append(module.register_forward_hook(_leaf_done, always_call=True))
        else:
            handles.append(module.register_forward_pre_hook(_enter))
            handles.append(module.register_forward_hook(_leave, always_call=True))
    trace = Trace(records=records, method="hooks", input_shape=example.shape)
    try:
        with _function_mode()(_functional):
            trace.output = example.call(model)
        _keep_functional_macs()
    except Exception as error:
        trace.failed_at = current["running"] or "forward"
        trace.error = trace_error_text(error)
    finally:
        for handle in handles:
            handle.remove()
    return trace

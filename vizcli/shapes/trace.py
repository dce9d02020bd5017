"""Trace a model's forward pass into one record per computation (collects, never prints).

``trace_shapes`` uses ``torch.fx`` so that functional operations module hooks miss (the
residual ``add``, ``flatten``) get rows of their own and a module called twice (a
BasicBlock's ``relu``) gets two rows. Models fx cannot trace fall back to per-call forward
hooks on leaf modules, and the trace says so; there, the operators a parent's own code runs
between its children that do the work (attention's matmuls and softmax, as in Hugging Face's
BERT) get rows too, named after that parent (``encoder.layer.0.attention.self.attention``).
"""

from __future__ import annotations

import operator
import re
import time
from dataclasses import dataclass, field
from typing import Any

from vizcli.shapes.wording import describe_module

FLATTEN_FUNCTIONS = {"flatten"}
# torch functions a container's own code calls that get rows when hooks trace (they carry MACs, or are a softmax):
# the function's name → (row label, operation wording)
FUNCTIONAL_ROWS = {
    "scaled_dot_product_attention": ("attention", "softmax(QKᵀ/√d)·V"),
    "matmul": ("matmul", "matmul"), "__matmul__": ("matmul", "matmul"), "bmm": ("matmul", "matmul"),
    "baddbmm": ("matmul", "matmul"), "einsum": ("einsum", "einsum"), "linear": ("linear", "linear"),
    "softmax": ("softmax", "softmax"), "_softmax": ("softmax", "softmax"),
}
ADD_FUNCTIONS = {operator.add, operator.iadd}


@dataclass
class LayerRecord:
    """One computation of the forward pass, in execution order.

    ``shape`` is the output as torch prints it (``(N, C, H, W)``); ``macs`` counts the
    multiply-accumulates of convolutions and linear layers only (torchvision's convention).
    ``params`` is counted at a module's first call only, so the column sums to the total.
    """

    index: int
    name: str  # qualified name: "layer2.0.downsample.0", "layer1.0.add"
    op: str  # diagram wording: "Conv2d 3x3, 128, stride=2"
    kind: str  # "Conv2d", "add", "flatten", …
    shape: tuple[int, ...]
    dtype: str
    params: int
    macs: int
    call: int = 0  # 0 for a module's first call, 1 for its second, …
    node: str = ""  # the fx node name ("layer1_0_relu_1"); empty for hooks
    inputs: list[str] = field(default_factory=list)  # fx node names this row reads
    parent: str = ""  # the enclosing module's qualified name ("layer2.0"); "" at the top
    depth: int = 1  # how many names deep: "fc" 1, "layer2.0" 2, "layer2.0.conv1" 3

    @property
    def bytes(self) -> int:
        import math

        sizes = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int64": 8, "int32": 4, "bool": 1, "uint8": 1}
        return math.prod(self.shape) * sizes.get(self.dtype, 4)

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "op": self.op,
            "kind": self.kind,
            "shape": list(self.shape),
            "diagram_shape": diagram_shape(self.shape),
            "dtype": self.dtype,
            "params": self.params,
            "macs": self.macs,
            "call": self.call,
        }


@dataclass
class Trace:
    """The records of one forward pass and how they were obtained."""

    records: list[LayerRecord]
    method: str  # "fx" or "hooks"
    input_shape: tuple[int, ...]
    output: Any = None  # the model's output tensor (None when the pass failed)
    failed_at: str | None = None  # name of the computation that raised
    error: str | None = None
    fallback_reason: str | None = None
    forward_seconds: float | None = None
    group_ops: dict[str, str] = field(default_factory=dict)  # "layer2" → "2× BasicBlock", for depth 1 and 2
    operator_macs: dict[str, int] = field(default_factory=dict)  # ATen operator kind → MACs, the whole pass
    operator_calls: dict[str, int] = field(default_factory=dict)  # kinds that carry no MACs → how often they ran
    used_parameters: set[str] | None = None  # parameters the pass touched (fx only; None when unknown)

    @property
    def shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        return [(record.name, record.shape) for record in self.records]


def torch_shape(shape: tuple[int, ...]) -> str:
    """``(1, 128, 28, 28)`` → ``1×128×28×28``."""
    return "×".join(str(size) for size in shape)


def text_axes(shape: tuple[int, ...], length: int, kind: str = "", call: int = 0) -> str:
    """A text model's output with its axes named, batch dropped (``length``: the input's tokens):
    ``(1, 8, 384)`` → ``seq 8 × hidden 384``; attention's per-head values ``(1, 12, 8, 32)`` →
    ``heads 12 × seq 8 × head 32``, its scores ``(1, 12, 8, 8)`` → ``heads 12 × seq 8 × seq 8``."""
    rest = tuple(shape[1:])
    if len(rest) == 0:
        return "—"
    if len(rest) == 1:
        return f"hidden {rest[0]}"  # the pooler's [CLS] vector
    if len(rest) == 2 and rest[0] == length:
        return f"seq {length} × hidden {rest[1]}"
    if len(rest) == 3 and rest[1] == length:
        scores = kind == "softmax" or (kind == "matmul" and call % 2 == 0)  # QKᵀ, then softmax; the second matmul is ·V
        return f"heads {rest[0]} × seq {length} × {'seq' if scores else 'head'} {rest[2]}"
    return "×".join(str(size) for size in rest)


def diagram_shape(shape: tuple[int, ...]) -> str:
    """The notes' H×W×C wording, batch dropped: ``(1, 128, 28, 28)`` → ``28×28×128``."""
    if len(shape) == 4:
        _, channels, height, width = shape
        return f"{height}×{width}×{channels}"
    if len(shape) == 3:
        _, channels, length = shape
        return f"{length}×{channels}"
    if len(shape) == 2:
        return str(shape[1])
    return torch_shape(shape)


def trace_shapes(model, example, method: str = "auto") -> Trace:
    """Run ``model`` on ``example`` (``Tensor[N, C, H, W]``) and record every computation.

    ``method``: ``"fx"``, ``"hooks"`` or ``"auto"`` (fx, falling back to hooks). The model's
    train/eval mode is restored and every hook removed, even when the forward pass fails.
    """
    was_training = model.training
    model.eval()
    try:
        trace = _run_trace(model, example, method)
    finally:
        model.train(was_training)
    _place_records(trace, model)
    return trace


def _run_trace(model, example, method: str) -> Trace:
    import torch

    from vizcli.shapes.count import OperatorCounter

    counter = OperatorCounter()
    # no_grad, not inference_mode: composite operators (conv2d, linear, matmul, einsum) then reach
    # the counter decomposed into the convolution/mm/bmm kernels that do the work
    with torch.no_grad(), counter:
        trace = _run_trace_counted(model, example, method, counter)
    trace.operator_macs = dict(counter.macs.most_common())
    trace.operator_calls = dict(counter.calls.most_common())
    return trace


def _run_trace_counted(model, example, method: str, counter) -> Trace:
    if method in ("auto", "fx"):
        try:
            import torch.fx

            graph_module = torch.fx.symbolic_trace(model)
        except Exception as error:  # fx cannot trace data-dependent control flow etc.
            if method == "fx":
                raise
            counter.reset()  # count the forward pass only, not what tracing touched
            trace = _trace_with_hooks(model, example, counter)
            trace.fallback_reason = f"torch.fx could not trace this model ({type(error).__name__})"
            return trace
        counter.reset()
        trace = _trace_with_fx(graph_module, example, counter)
        if trace.error is None or method == "fx":
            return trace
        # fx traced the model but its graph failed to run (Swin3D mutates a list fx made immutable):
        # the model itself may still run, so hooks decide; when they fail too, fx's error names the node
        counter.reset()
        hooked = _trace_with_hooks(model, example, counter)
        if hooked.error is not None:
            return trace
        hooked.fallback_reason = f"torch.fx's graph of this model failed to run ({trace.error[:80]})"
        return hooked
    return _trace_with_hooks(model, example, counter)


def _place_records(trace: Trace, model) -> None:
    """Give each record its parent and depth, and describe every stage and block once.

    Rendering then needs only the trace, never the live model.
    """
    for record in trace.records:
        parts = record.name.split(".")
        record.parent = ".".join(parts[:-1])
        record.depth = len(parts)
        for depth in (1, 2):
            key = ".".join(parts[:depth])
            if key not in trace.group_ops:
                trace.group_ops[key] = _group_op(model, key, record.op)


def _group_op(model, key: str, fallback: str) -> str:
    """``"4× Bottleneck"`` for a Sequential of one kind, the class name for a container, else ``fallback``."""
    import torch.nn as nn

    try:
        module = model.get_submodule(key)
    except AttributeError:
        return fallback
    if isinstance(module, nn.Sequential) and len(module) > 0:
        kinds = {type(child).__name__ for child in module}
        if len(kinds) == 1:
            return f"{len(module)}× {kinds.pop()}"
        return f"Sequential of {len(module)}"
    if list(module.children()):
        return type(module).__name__
    return fallback


def time_forward(model, example, repeats: int = 1) -> float:
    """Seconds for one plain forward pass (best of ``repeats``), outside any tracing."""
    import torch

    best = float("inf")
    with torch.inference_mode():
        for _ in range(repeats):
            start = time.perf_counter()
            model(example)
            if example.is_cuda:
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
    return best


# ---------------------------------------------------------------- fx


def _trace_with_fx(graph_module, example, counter) -> Trace:
    import torch
    import torch.fx

    records: list[LayerRecord] = []
    calls: dict[str, int] = {}

    class _Recorder(torch.fx.Interpreter):
        def run_node(self, node):
            result = super().run_node(node)
            macs = counter.take()  # every operator this node dispatched
            if node.op in ("call_module", "call_function", "call_method") and isinstance(result, torch.Tensor):
                records.append(_record_from_node(graph_module, node, result, len(records), calls, macs))
            elif macs and records:  # a node returning a tuple (attention's output, weights): keep its MACs
                records[-1].macs += macs
            return result

    trace = Trace(records=records, method="fx", input_shape=tuple(example.shape))
    trace.used_parameters = _parameters_used(graph_module)
    try:
        trace.output = _Recorder(graph_module).run(example)
    except Exception as error:
        trace.failed_at, trace.error = _failure(graph_module, records, error)
    return trace


def _parameters_used(graph_module) -> set[str]:
    """Names of the parameters the graph reads: those of every module it calls, and those it fetches
    directly (functional code such as Swin's attention uses ``self.qkv.weight`` without calling ``qkv``)."""
    used: set[str] = set()
    for node in graph_module.graph.nodes:
        if node.op == "call_module":
            module = graph_module.get_submodule(node.target)
            used.update(f"{node.target}.{name}" for name, _ in module.named_parameters())
        elif node.op == "get_attr":
            used.add(str(node.target))
    return used


def _failure(graph_module, records, error) -> tuple[str, str]:
    # The node after the last recorded one is the one that raised.
    done = {record.node for record in records}
    for node in graph_module.graph.nodes:
        if node.op in ("call_module", "call_function", "call_method") and node.name not in done:
            name = node.target if node.op == "call_module" else node.name
            return str(name), trace_error_text(error)
    return "output", trace_error_text(error)


def trace_error_text(error: BaseException) -> str:
    """The error a traced forward raised, on one line, without fx's "While executing" tail."""
    # fx appends "While executing %node ..." and a traceback hint; keep the first part only.
    text = str(error).split("While executing")[0]
    text = re.sub(r"Proxy\((\w+)\)", r"\1", text)  # fx internals name values Proxy(getitem_2); show the name
    return " ".join(text.split()) or type(error).__name__


def _record_from_node(graph_module, node, result, index: int, calls: dict[str, int], macs: int) -> LayerRecord:
    inputs = [arg.name for arg in node.all_input_nodes]
    if node.op == "call_module":
        module = graph_module.get_submodule(node.target)
        name = str(node.target)
        call = calls.get(name, 0)
        calls[name] = call + 1
        params = sum(p.numel() for p in module.parameters()) if call == 0 else 0  # fx calls leaf modules only
        return LayerRecord(
            index=index,
            name=name,
            op=describe_module(module),
            kind=type(module).__name__,
            shape=tuple(result.shape),
            dtype=str(result.dtype).replace("torch.", ""),
            params=params,
            macs=macs,
            call=call,
            node=node.name,
            inputs=inputs,
        )
    function_name = getattr(node.target, "__name__", str(node.target))
    is_add = node.target in ADD_FUNCTIONS or function_name in ("add", "iadd", "add_")
    kind = "add" if is_add else function_name
    owner = _owner_path(node)
    short = "add" if is_add else function_name
    name = f"{owner}.{short}" if owner else short
    call = calls.get(name, 0)
    calls[name] = call + 1
    op = "Add" if is_add else ("Flatten" if function_name in FLATTEN_FUNCTIONS else function_name)
    return LayerRecord(
        index=index,
        name=name,
        op=op,
        kind=kind,
        shape=tuple(result.shape),
        dtype=str(result.dtype).replace("torch.", ""),
        params=0,
        macs=macs,
        call=call,
        node=node.name,
        inputs=inputs,
    )


def _owner_path(node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    last = list(stack.keys())[-1]
    return str(last).split("@")[0]


# ---------------------------------------------------------------- hooks


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


def _trace_with_hooks(model, example, counter) -> Trace:
    import torch

    records: list[LayerRecord] = []
    calls: dict[str, int] = {}
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
        if (macs or label == "softmax") and isinstance(first, torch.Tensor):
            name = f"{owners[-1]}.{label}" if owners and owners[-1] else label
            call = calls.get(name, 0)
            calls[name] = call + 1
            records.append(LayerRecord(index=len(records), name=name, op=op, kind=label, shape=tuple(first.shape),
                                       dtype=str(first.dtype).replace("torch.", ""), params=0, macs=macs, call=call))
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
        if not isinstance(result, torch.Tensor):
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
                params=sum(p.numel() for p in module.parameters()) if call == 0 else 0,
                macs=counter.take(),
                call=call,
            )
        )

    for module in model.modules():
        if not list(module.children()):
            handles.append(module.register_forward_pre_hook(_pre))
            handles.append(module.register_forward_hook(_post))
            handles.append(module.register_forward_hook(_leaf_done, always_call=True))
        else:
            handles.append(module.register_forward_pre_hook(_enter))
            handles.append(module.register_forward_hook(_leave, always_call=True))
    trace = Trace(records=records, method="hooks", input_shape=tuple(example.shape))
    try:
        with _function_mode()(_functional):
            trace.output = model(example)
        _keep_functional_macs()
    except Exception as error:
        trace.failed_at = current["running"] or "forward"
        trace.error = trace_error_text(error)
    finally:
        for handle in handles:
            handle.remove()
    return trace

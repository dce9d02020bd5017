"""Trace a model's forward pass into one record per computation (collects, never prints).

``trace_shapes`` uses ``torch.fx`` so that functional operations module hooks miss (the
residual ``add``, ``flatten``) get rows of their own and a module called twice (a
BasicBlock's ``relu``) gets two rows. Models fx cannot trace fall back to per-call forward
hooks on leaf modules (``vizcli.shapes.hooks``), and the trace says so. The records and their
shape wordings are in ``vizcli.shapes.records``.
"""

from __future__ import annotations

import operator
import time

from vizcli.shapes.hooks import trace_with_hooks
from vizcli.shapes.inputs import ModelInput, as_model_input, positional_for_graph
from vizcli.shapes.records import LayerRecord, Trace, new_parameters, notify, trace_error_text
from vizcli.shapes.scripted import module_kind
from vizcli.shapes.wording import describe_module

FLATTEN_FUNCTIONS = {"flatten"}
ADD_FUNCTIONS = {operator.add, operator.iadd}


def trace_shapes(model, example, method: str = "auto", observers: tuple = ()) -> Trace:
    """Run ``model`` on ``example`` and record every computation.

    ``example`` is torchinfo's ``input_data``: a tensor (``Tensor[N, C, H, W]`` for an image model), a list
    of the positional arguments, a dict of the keyword arguments, or a ``ModelInput``. ``method``:
    ``"fx"``, ``"hooks"`` or ``"auto"`` (fx, falling back to hooks; a TorchScript model is traced by its
    operators, ``vizcli.shapes.scripted``). ``observers`` see each row's output tensor as it is made
    (``vizcli.shapes.activations``). The model's train/eval mode is restored and every hook removed,
    even when the forward pass fails.
    """
    example = as_model_input(example)
    was_training = model.training
    set_mode(model, False)
    try:
        trace = _run_trace(model, example, method, observers)
    finally:
        set_mode(model, was_training)
    _place_records(trace, model)
    return trace


def set_mode(model, training: bool) -> None:
    """``model.train(training)``; a torch.export program's module has no modes (it raises): it keeps the one it
    was exported in."""
    try:
        model.train(training)
    except NotImplementedError:
        pass


def trace_with_counter(model, example, method: str, counter) -> Trace:
    """``trace_shapes`` with another counter (an object with ``take()``, ``reset()``, used as a context):
    the same records, each carrying what that counter saw while it ran (``vizcli.shapes.compare``)."""
    import torch

    was_training = model.training
    set_mode(model, False)
    try:
        with torch.no_grad(), counter:
            return _run_trace_counted(model, as_model_input(example), method, counter, ())
    finally:
        set_mode(model, was_training)


def _run_trace(model, example: ModelInput, method: str, observers: tuple) -> Trace:
    import torch

    from vizcli.shapes.count import OperatorCounter

    counter = OperatorCounter()
    # no_grad, not inference_mode: composite operators (conv2d, linear, matmul, einsum) then reach
    # the counter decomposed into the convolution/mm/bmm kernels that do the work
    with torch.no_grad(), counter:
        trace = _run_trace_counted(model, example, method, counter, observers)
    trace.input_shapes = example.shapes()
    trace.operator_macs = dict(counter.macs.most_common())
    trace.operator_calls = dict(counter.calls.most_common())
    return trace


def _run_trace_counted(model, example: ModelInput, method: str, counter, observers: tuple = ()) -> Trace:
    import torch

    if isinstance(model, torch.jit.ScriptModule):  # no fx, no hooks: its operators, owned by the modules whose weights they read
        from vizcli.shapes.scripted import trace_with_dispatch

        return trace_with_dispatch(model, example, counter, observers)
    if method in ("auto", "fx"):
        positional = positional_for_graph(model.forward, example)
        try:
            if positional is None:
                raise TypeError("the inputs cannot be given to the graph by position")
            graph_module = _graph_module(model)
        except Exception as error:  # fx cannot trace data-dependent control flow etc.
            if method == "fx":
                raise
            counter.reset()  # count the forward pass only, not what tracing touched
            trace = trace_with_hooks(model, example, counter, observers)
            trace.fallback_reason = f"torch.fx could not trace this model ({type(error).__name__})"
            return trace
        counter.reset()
        trace = _trace_with_fx(graph_module, example, positional, counter, observers)
        if trace.error is None or method == "fx":
            return trace
        # fx traced the model but its graph failed to run (Swin3D mutates a list fx made immutable):
        # the model itself may still run, so hooks decide; when they fail too, fx's error names the node
        counter.reset()
        hooked = trace_with_hooks(model, example, counter, observers)
        if hooked.error is not None:
            return trace
        hooked.fallback_reason = f"torch.fx's graph of this model failed to run ({trace.error[:80]})"
        return hooked
    return trace_with_hooks(model, example, counter, observers)


def _graph_module(model):
    """``model``'s fx graph; a GraphModule already is one (a torch.export program's module: its own nodes keep the
    module each came from). Scripted submodules are leaves: fx cannot look inside them, and they are one row each."""
    import torch
    import torch.fx

    if isinstance(model, torch.fx.GraphModule):
        return model

    class _Tracer(torch.fx.Tracer):
        def is_leaf_module(self, module, qualified_name: str) -> bool:
            return isinstance(module, torch.jit.ScriptModule) or super().is_leaf_module(module, qualified_name)

    tracer = _Tracer()
    graph = tracer.trace(model)
    return torch.fx.GraphModule(tracer.root, graph, type(model).__name__)


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
    except (AttributeError, RuntimeError):  # not a module; a ScriptModule has no get_submodule
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

    example = as_model_input(example)
    best = float("inf")
    with torch.inference_mode():
        for _ in range(repeats):
            start = time.perf_counter()
            example.call(model)
            if example.is_cuda:
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
    return best


# ---------------------------------------------------------------- fx


def _trace_with_fx(graph_module, example: ModelInput, positional: tuple, counter, observers: tuple = ()) -> Trace:
    import torch
    import torch.fx

    records: list[LayerRecord] = []
    calls: dict[str, int] = {}
    counted: set[int] = set()  # parameters already in a row's params

    class _Recorder(torch.fx.Interpreter):
        def run_node(self, node):
            result = super().run_node(node)
            macs = counter.take()  # every operator this node dispatched
            computes = node.op in ("call_module", "call_function", "call_method")
            first = result[0] if isinstance(result, (tuple, list)) and result else None
            if computes and isinstance(result, torch.Tensor):
                row_tensor = result
            elif computes and isinstance(first, torch.Tensor) and (node.op == "call_module" or macs):
                row_tensor = first  # a module returning a tuple (MultiheadAttention: output, weights): its first's shape
            else:
                if macs and records:
                    records[-1].macs += macs
                return result
            record = _record_from_node(graph_module, node, row_tensor, len(records), calls, macs, counted)
            records.append(record)
            notify(observers, record, row_tensor)
            return result

    trace = Trace(records=records, method="fx", input_shape=example.shape)
    trace.used_parameters = _parameters_used(graph_module)
    try:
        trace.output = _Recorder(graph_module).run(*positional)
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


def _record_from_node(graph_module, node, result, index: int, calls: dict[str, int], macs: int, counted: set[int]) -> LayerRecord:
    inputs = [arg.name for arg in node.all_input_nodes]
    if node.op == "call_module":
        module = graph_module.get_submodule(node.target)
        name = str(node.target)
        call = calls.get(name, 0)
        calls[name] = call + 1
        params = new_parameters(module.parameters(), counted)  # fx calls leaf modules only
        return LayerRecord(
            index=index,
            name=name,
            op=describe_module(module),
            kind=module_kind(module),
            shape=tuple(result.shape),
            dtype=str(result.dtype).replace("torch.", ""),
            params=params,
            macs=macs,
            call=call,
            node=node.name,
            inputs=inputs,
        )
    packet = getattr(node.target, "_overloadpacket", None)  # an ATen operator (exported graphs): aten.convolution.default
    function_name = str(packet.__name__) if packet is not None else getattr(node.target, "__name__", str(node.target))
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
        params=_parameters_read(graph_module, node, counted),
        macs=macs,
        call=call,
        node=node.name,
        inputs=inputs,
    )


def _parameters_read(graph_module, node, counted: set[int]) -> int:
    """The parameters a function node reads directly (``get_attr``: a torch.export graph's weights, Swin's
    ``self.qkv.weight``), each counted at its first reader only, so the column still sums to the total."""
    read = []
    for source in node.all_input_nodes:
        if source.op != "get_attr":
            continue
        try:
            read.append(graph_module.get_parameter(str(source.target)))
        except AttributeError:  # a buffer or a constant, not a parameter
            continue
    return new_parameters(read, counted)


def _owner_path(node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    last, value = list(stack.items())[-1]
    if isinstance(value, tuple) and value and isinstance(value[0], str):  # torch.export: key → (qualified name, type)
        return value[0]
    return str(last).split("@")[0]

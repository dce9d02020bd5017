"""``vizcli shapes``: run a model on images (or a synthetic input) and collect shape reports."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from vizcli.common.errors import BadInput
from vizcli.common.sizes import MAX_INPUT_VALUES, parse_size
from vizcli.shapes.records import LayerRecord, Trace, torch_shape
from vizcli.shapes.trace import time_forward, trace_shapes

IMAGE_CHANNELS = 3  # torchvision's classification models take RGB
MAX_TRAIN_BATCH = 1024


@dataclass
class ImageRun:
    """One input: where it came from, what preprocessing did, its trace and predictions."""

    label: str
    steps: list[str]
    trace: Trace
    predictions: list[tuple[str, float]] | None = None
    nonfinite_outputs: int = 0  # NaN or infinite values in the model's output (broken weights, overflow)
    example: Any = None  # the input tensor the trace ran on (batch axis included)

    def failure_message(self) -> str:
        """Where and why this run's forward pass failed, and what to check."""
        trace = self.trace
        what = "the synthetic input" if self.label == "synthetic" else f"image {self.label}"
        return (
            f"forward pass of {what} failed at {trace.failed_at} after {len(trace.records)} computations: "
            f"{trace.error}; check that the input size fits the model"
        )


@dataclass
class ShapesReport:
    """Every run of one model; runs with identical shapes share one table."""

    model_name: str
    weights_note: str
    pretrained: bool
    runs: list[ImageRun]
    parameters: int
    trainable_parameters: int
    device: str
    model: Any = None  # the nn.Module that ran, for the diagram check and group names
    documented_gmacs: float | None = None
    documented_input: tuple[int, ...] = (3, 224, 224)  # the per-sample input torchvision's documented figures are for
    task: str = "classification"  # or "segmentation", "detection", "video"
    unused_parameters: dict[str, int] = field(default_factory=dict)  # module → parameters that never ran
    memory: dict[str, Any] = field(default_factory=dict)  # dtype, parameter/buffer bytes, one training step
    comparison: Any = None  # vizcli.shapes.compare.Comparison of the first run, with --compare

    def totals(self, run: ImageRun) -> dict[str, Any]:
        """Parameters, MACs (FLOPs = 2 × MACs), activation bytes per dtype and forward time of ``run``."""
        records = run.trace.records
        macs = sum(record.macs for record in records)
        activation: dict[str, int] = {}
        for record in records:
            activation[record.dtype] = activation.get(record.dtype, 0) + record.bytes
        forward_seconds = run.trace.forward_seconds
        return {
            "parameters": self.parameters,
            "executed_parameters": self.parameters - sum(self.unused_parameters.values()),
            "unused_parameters": self.unused_parameters,
            "trainable_parameters": self.trainable_parameters,
            "macs": macs,
            "flops": 2 * macs,
            "documented_gmacs": self.documented_gmacs,
            "activation_bytes": activation,
            "forward_ms": None if forward_seconds is None else forward_seconds * 1000,
            "operator_macs": run.trace.operator_macs,
            "operators_without_macs": run.trace.operator_calls,
        }

    def tables(self) -> list[list[ImageRun]]:
        """Runs grouped by identical (name, shape) sequences, in first-seen order."""
        groups: dict[tuple, list[ImageRun]] = {}
        for run in self.runs:
            groups.setdefault(tuple(run.trace.shapes), []).append(run)
        return list(groups.values())


def parse_input_size(text: str, video: bool = False) -> tuple[int, ...]:
    """``"3x224x224"`` (or ``224`` / ``224x224``, 3 channels implied) → (C, H, W); with ``video``,
    ``"3x16x112x112"`` (or ``16x112x112``) → (C, T, H, W)."""
    if video:
        size = parse_size(text, "input_size", 4, "CxTxHxW", "3x16x112x112", fill=(IMAGE_CHANNELS,))
    else:
        size = parse_size(text, "input_size", 3, "CxHxW", "3x224x224", fill=(IMAGE_CHANNELS,))
    if math.prod(size) > MAX_INPUT_VALUES:
        raise BadInput("too large (at most 3x4096x4096 values)", parameter="input_size", value=text)
    return size


def run_shapes(
    images: list[str],
    input_size: str | None = None,
    keep_size: bool = False,
    model_name: str = "resnet18",
    weights: str | None = None,
    seed: int = 0,
    device: str = "auto",
    max_pixels: int | None = None,
    memory: MemoryOptions | None = None,
    activations: Any = None,
    observers: tuple = (),
) -> ShapesReport:
    """Load the model once, run every image (or one synthetic input) and trace it.

    ``memory`` chooses the dtype of the memory figures and, with ``train=True``, adds one
    training step's memory at ``batch_size`` with ``optimizer`` (counted from the autograd graph).
    ``activations`` (an ``ActivationOptions``) adds per-row statistics of the values and keeps the maps it names;
    ``observers`` (callables ``(record, tensor)``) see every row's output as it is made.
    """
    from vizcli.common.models import documented_input, documented_macs, load_model, model_task
    from vizcli.common.runtime import resolve_device

    task = model_task(model_name)
    memory = (memory or MemoryOptions()).check()
    if memory.train and task == "detection":
        raise BadInput("detection models need target boxes to train; drop train=True", parameter="train", value=True)
    target = resolve_device(device)
    inputs = prepare_inputs(model_name, images, input_size, keep_size, seed, max_pixels)
    loaded_model = load_model(model_name, weights=weights, seed=seed)
    model = loaded_model.model.to(target)
    runs = []
    for label, steps, tensor in inputs:
        example = tensor.unsqueeze(0).to(target)
        run = _traced_run(model, label, steps, example, activations, observers)
        trace = run.trace
        if trace.error is None and task == "classification" and loaded_model.pretrained and loaded_model.categories:
            run.predictions = _top5(trace.output, loaded_model.categories)
        if trace.error is None and trace.output is not None:
            run.nonfinite_outputs = _nonfinite(trace.output)
            if run.nonfinite_outputs:
                run.predictions = None  # probabilities of NaN logits mean nothing
        runs.append(run)
    parameters = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    report = ShapesReport(
        model_name=model_name,
        weights_note=loaded_model.weights_note,
        pretrained=loaded_model.pretrained,
        runs=runs,
        parameters=parameters,
        trainable_parameters=trainable,
        device=str(target),
        model=model,
        documented_gmacs=documented_macs(model_name),
        documented_input=documented_input(model_name),
        task=task,
        unused_parameters=_unused_parameter_groups(model, runs[0].trace.used_parameters),
    )
    report.memory = _memory(model, inputs[0][2].to(target), memory)
    return report


def prepare_inputs(model_name: str, images: list[str], input_size: str | None = None, keep_size: bool = False, seed: int = 0,
                   max_pixels: int | None = None) -> list[tuple[str, list[str], Any]]:
    """(label, preprocessing steps, one sample ``Tensor[C, H, W]``) for every image as the torchvision model
    ``model_name``'s weights prepare it, or one seeded synthetic ``input_size`` sample when there are none."""
    import torch

    from vizcli.common.images import load_image, pixel_limit
    from vizcli.common.models import documented_input, model_task

    task = model_task(model_name)
    if images and task == "video":
        raise BadInput(f"{model_name} takes video clips; give input_size=CxTxHxW (e.g. 3x16x112x112) instead of images", parameter="images", value=images[0])
    documented = documented_input(model_name)
    input_size = input_size or "x".join(map(str, documented))  # the size torchvision's figures are for
    size = parse_input_size(input_size, video=task == "video")
    limit = pixel_limit(max_pixels)
    if size[0] != IMAGE_CHANNELS:
        form = "3xTxHxW" if task == "video" else "3xHxW"
        raise BadInput(f"{model_name} takes {IMAGE_CHANNELS}-channel (RGB) input; use {form}", parameter="input_size", value=input_size)
    inputs: list[tuple[str, list[str], Any]] = []
    for path in images:
        loaded = load_image(path, max_pixels=limit)
        tensor = _preprocess(loaded, model_name, task, keep_size, documented)
        inputs.append((path, list(loaded.record.steps), tensor))
    if not images:
        generator = torch.Generator().manual_seed(seed)
        if task == "detection":  # detectors take pixels in [0, 1] and normalise inside
            tensor, noise = torch.rand(size, generator=generator), "seeded uniform noise in [0, 1]"
        else:
            tensor, noise = torch.randn(size, generator=generator), "seeded normal noise"
        inputs.append(("synthetic", [f"synthetic input {torch_shape(size)} ({noise})"], tensor))
    return inputs


def run_any_shapes(
    spec: str,
    images: list[str],
    input_size: str | list[str] | None = None,
    model_args: dict[str, Any] | None = None,
    text: str | None = None,
    seq_len: int | None = None,
    seed: int = 0,
    device: str = "auto",
    max_pixels: int | None = None,
    memory: MemoryOptions | None = None,
    activations: Any = None,
) -> ShapesReport:
    """``run_shapes`` for a model torchvision does not have (``vizcli.shapes.any_model``): your own
    factory on ``input_size`` or images, or a BERT-family text model on ``text`` / ``seq_len``.

    ``input_size``: one sample's shape (``"3x32x32"``), or a list of ``[NAME=]SHAPE[:DTYPE[:HIGH]]`` for several
    positional, keyword or dict inputs (``vizcli.shapes.inputs``); a batch axis of 1 is put in front of each.
    """
    import torch

    from vizcli.common.images import load_image, pixel_limit
    from vizcli.common.runtime import resolve_device
    from vizcli.shapes.any_model import FACTORY, any_input_size, is_exported_program, load_exported, load_factory, load_text_model

    memory = (memory or MemoryOptions()).check()
    target = resolve_device(device)
    inputs: list[tuple[str, list[str], Any]] = []  # (label, steps, one sample: the batch axis is added below; or a ModelInput)
    sizes = [input_size] if isinstance(input_size, str) else list(input_size or [])
    if len(sizes) > 1 and not FACTORY.match(spec):
        raise BadInput("several inputs are for your own model (file.py:factory); give one size", parameter="input_size",
                       value=", ".join(sizes))
    input_size = sizes[0] if len(sizes) == 1 else None
    if is_exported_program(spec):
        if text is not None or seq_len is not None or images or model_args:
            raise BadInput("an exported program takes its own example input, or input_size=…; drop images, text, seq_len "
                           "and model_arg", parameter="model", value=spec)
        source = load_exported(spec)
        if input_size is not None:
            size = any_input_size(input_size)
            inputs.append(("synthetic", [f"synthetic input {torch_shape(size)} (seeded normal noise)"],
                           torch.randn(size, generator=torch.Generator().manual_seed(seed))))
        elif source.example is not None and source.example.shape[:1] == (1,):
            inputs.append(("example", list(source.steps), source.example[0]))
        else:
            raise BadInput("the program has no single-tensor example input of batch 1; give input_size=CxHxW",
                           parameter="model", value=spec)
        task = "custom"
    elif FACTORY.match(spec):
        if text is not None or seq_len is not None:
            raise BadInput("text and seq_len are for text models; give input_size=CxHxW for your own model", parameter="seq_len"
                           if seq_len is not None else "text", value=seq_len if seq_len is not None else text)
        source = load_factory(spec, model_args or {})
        for path in images:
            loaded = load_image(path, max_pixels=pixel_limit(max_pixels))
            inputs.append((path, list(loaded.record.steps), _preprocess(loaded, "resnet18", "classification", False, (3, 224, 224))))
        if not images:
            inputs.append(_synthetic_inputs(sizes or ["3x224x224"], seed))
        elif sizes:
            raise BadInput("give images or input_size, not both", parameter="input_size", value=sizes[0])
        task = "custom"
    else:
        if images or input_size is not None:
            raise BadInput("a text model takes text=… or seq_len=N, not images or an input size", parameter="model", value=spec)
        if model_args:
            raise BadInput("model_arg is for factories (file.py:factory); a model folder carries its config", parameter="model", value=spec)
        source = load_text_model(spec, text, seq_len, seed)
        inputs.append(("text" if text is not None else "synthetic", list(source.steps), source.example[0]))
        task = "text"
    if memory.train and task == "text":
        raise BadInput("train=True sizes an image model's step; drop it for a text model", parameter="train", value=True)
    model = source.module.to(target)
    batched = [(label, steps, tensor.unsqueeze(0) if isinstance(tensor, torch.Tensor) else tensor) for label, steps, tensor in inputs]
    report = _report_of_module(model, batched, target, memory, task, source.name, source.note,
                               pretrained=source.kind in ("text", "exported"), activations=activations)
    return report


def run_module_shapes(model: Any, input_data: Any, name: str | None = None, device: str = "auto",
                      memory: MemoryOptions | None = None, activations: Any = None, **kwargs: Any) -> ShapesReport:
    """The shapes report of a live ``nn.Module`` (``torchinfo.summary(model, input_data=…)``'s counterpart).

    ``input_data`` as torchinfo takes it: a tensor (``Tensor[N, …]``, batch included), a list or tuple of the
    positional arguments, or a dict of the keyword arguments; ``kwargs`` are added as keyword arguments.
    ``activations`` (an ``ActivationOptions``) adds per-row statistics of the real values.
    """
    from vizcli.common.runtime import resolve_device
    from vizcli.shapes.inputs import as_model_input

    memory = (memory or MemoryOptions()).check()
    target = resolve_device(device)
    example = as_model_input(input_data, **kwargs)
    shown = name or type(model).__name__
    return _report_of_module(model.to(target), [("input", [f"given input {example.describe()}"], example)], target, memory,
                             "custom", shown, "the module as given: its own weights", pretrained=True, activations=activations)


def _report_of_module(model: Any, inputs: list[tuple[str, list[str], Any]], target: Any, memory: MemoryOptions, task: str,
                      name: str, note: str, pretrained: bool, activations: Any = None) -> ShapesReport:
    """Trace every batched input (a tensor or a ``ModelInput``) of ``model`` into one report."""
    from vizcli.shapes.inputs import ModelInput

    runs = []
    for label, steps, example in inputs:
        example = example.to(target)
        run = _traced_run(model, label, steps, example, activations)
        if run.trace.error is None and run.trace.output is not None:
            run.nonfinite_outputs = _nonfinite(run.trace.output)
        runs.append(run)
    report = ShapesReport(
        model_name=name, weights_note=note, pretrained=pretrained, runs=runs,
        parameters=sum(p.numel() for p in model.parameters()),
        trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
        device=str(target), model=model, documented_gmacs=None, documented_input=(), task=task,
        unused_parameters=_unused_parameter_groups(model, runs[0].trace.used_parameters),
    )
    first = inputs[0][2]
    if memory.train and (isinstance(first, ModelInput) or first.shape[:1] != (1,)):
        raise BadInput("train=True sizes a step of a one-tensor model; give one input of batch 1", parameter="train", value=True)
    report.memory = _memory(model, first[0].to(target) if not isinstance(first, ModelInput) else None, memory)
    return report


def _traced_run(model: Any, label: str, steps: list[str], example: Any, activations: Any = None,
                observers: tuple = ()) -> ImageRun:
    """Trace ``model`` on ``example`` (time its untraced pass when it ran), with activation statistics if asked."""
    collector = None
    if activations is not None:
        from vizcli.shapes.activations import ActivationCollector

        collector = ActivationCollector(activations)
        collector.maps.input = example[0].detach().float().clone() if activations.strip and hasattr(example, "dim") else None
        observers = (*observers, collector.observe)
    trace = trace_shapes(model, example, observers=observers)
    if collector is not None:
        trace.activations = collector.statistics
        trace.kept_maps = collector.maps
        collector.finish(trace)
    if trace.error is None:  # the traced pass above was the warm-up
        trace.forward_seconds = time_forward(model, example, repeats=3)
    return ImageRun(label=label, steps=steps, trace=trace, example=example)


def _synthetic_inputs(sizes: list[str], seed: int) -> tuple[str, list[str], Any]:
    """Your own model's synthetic input: one sample of one size (the batch axis added later), or a ``ModelInput``
    of several positional, keyword or dict inputs, batch 1 each."""
    import torch

    from vizcli.shapes.any_model import any_input_size
    from vizcli.shapes.inputs import parse_input_specs, synthetic_input

    if len(sizes) == 1 and re.fullmatch(r"[0-9xX]+", sizes[0]):
        size = any_input_size(sizes[0])
        tensor = torch.randn(size, generator=torch.Generator().manual_seed(seed))
        return "synthetic", [f"synthetic input {torch_shape(size)} (seeded normal noise)"], tensor
    example = synthetic_input(parse_input_specs(sizes), seed)
    return "synthetic", [f"synthetic inputs {example.describe()} (seeded: normal noise, ids, coins)"], example


@dataclass(frozen=True)
class MemoryOptions:
    """What ``shapes`` reports about memory: the storage dtype, and whether to size a training step."""

    dtype: str = "float32"
    train: bool = False
    optimizer: str = "adam"
    batch_size: int = 1

    def check(self) -> MemoryOptions:
        """``self`` if every value is usable (checked before any model is loaded)."""
        from vizcli.shapes.memory import DTYPE_BYTES, OPTIMIZER_STATE

        if self.dtype not in DTYPE_BYTES:
            raise BadInput(f"use one of {', '.join(DTYPE_BYTES)}", parameter="dtype", value=self.dtype)
        if self.optimizer not in OPTIMIZER_STATE:
            raise BadInput(f"use one of {', '.join(OPTIMIZER_STATE)}", parameter="optimizer", value=self.optimizer)
        if not 1 <= self.batch_size <= MAX_TRAIN_BATCH:
            raise BadInput(f"use 1..{MAX_TRAIN_BATCH}", parameter="batch_size", value=self.batch_size)
        return self


def _memory(model, example, options: MemoryOptions) -> dict[str, Any]:
    """Parameter and buffer bytes in ``options.dtype``; with ``options.train``, one step on ``example`` (one sample)."""
    from vizcli.shapes.memory import parameter_bytes, training_step

    params, buffers = parameter_bytes(model, options.dtype)
    result: dict[str, Any] = {"dtype": options.dtype, "parameter_bytes": params, "buffer_bytes": buffers, "training": None}
    if options.train:
        batch = example.unsqueeze(0).expand(options.batch_size, *example.shape).contiguous()
        result["training"] = training_step(model, batch, options.optimizer, options.dtype).as_dict()
    return result


def _unused_parameter_groups(model, used: set[str] | None) -> dict[str, int]:
    """The top-most modules none of whose parameters the pass used, with their parameter counts
    (googlenet's aux1/aux2 when built with them, inception_v3's AuxLogits): they exist but never ran."""
    if used is None:
        return {}
    # a module (or a parameter) registered under two names ran under either: a parameter is used when any of its names is
    used_ids = {id(value) for key, value in model.named_parameters(remove_duplicate=False) if key in used}
    groups: dict[str, int] = {}
    for name, module in model.named_modules():
        if not name or any(name.startswith(group + ".") for group in groups):
            continue
        owned = list(module.parameters())
        if owned and not any(id(value) in used_ids for value in owned):
            groups[name] = sum(value.numel() for value in owned)
    return groups


def _preprocess(loaded, model_name: str, task: str, keep_size: bool, documented: tuple[int, ...]):
    """An image as ``task``'s weights' transforms prepare it: resize and centre crop of the weights for classification,
    shorter side to 520 for segmentation, unnormalised pixels for detection (the model resizes and
    normalises inside)."""
    from vizcli.common.images import imagenet_tensor, unit_tensor
    from vizcli.common.models import classification_preprocessing

    if task == "detection":
        return unit_tensor(loaded)
    if keep_size:
        return imagenet_tensor(loaded, resize=None, crop=None)
    if task == "segmentation":
        return imagenet_tensor(loaded, resize=documented[-1], crop=None)
    resize, crop = classification_preprocessing(model_name)
    return imagenet_tensor(loaded, resize=resize, crop=crop)


def _nonfinite(output) -> int:
    """NaN or infinite values in every floating tensor of ``output`` (a tensor, dict or list of them)."""
    import torch

    from vizcli.shapes.memory import output_tensors

    return sum(int((~torch.isfinite(t)).sum()) for t in output_tensors(output) if t.is_floating_point())


def _top5(logits, categories: list[str]) -> list[tuple[str, float]]:
    import torch

    probabilities = torch.softmax(logits.float().flatten(), dim=0)
    values, indices = probabilities.topk(min(5, probabilities.numel()))
    return [
        (categories[i] if i < len(categories) else f"class {i}", float(v))
        for v, i in zip(values.tolist(), indices.tolist())
    ]


# ---------------------------------------------------------------- grouping by depth


@dataclass
class GroupRow:
    """A row of the table at depth 1 or 2 (or one computation at depth 3)."""

    name: str
    op: str
    shape: tuple[int, ...]
    params: int
    macs: int
    rows: int
    diagram_nodes: list[str]
    last_index: int = -1  # the record whose output is the group's


def group_key(record: LayerRecord, depth: int) -> str:
    """``layer2.0.conv1`` → ``layer2`` at depth 1, ``layer2.0`` at depth 2, itself at depth 3."""
    if depth >= 3:
        return f"{record.name}#{record.call}"
    parts = record.name.split(".")
    return ".".join(parts[:depth])


def group_records(trace: Trace, depth: int, diagram_nodes: dict[int, str]) -> list[GroupRow]:
    """Collapse records into stages (depth 1) or blocks (depth 2), summing params and MACs."""
    groups: dict[str, GroupRow] = {}
    for record in trace.records:
        key = group_key(record, depth)
        node = diagram_nodes.get(record.index)
        if key not in groups:
            name = record.name if depth >= 3 else key
            groups[key] = GroupRow(
                name=name, op=record.op if depth >= 3 else trace.group_ops.get(key, record.op),
                shape=record.shape, params=0, macs=0, rows=0, diagram_nodes=[],
            )
        group = groups[key]
        group.shape = record.shape
        group.params += record.params
        group.macs += record.macs
        group.rows += 1
        group.last_index = record.index
        if node:
            group.diagram_nodes.append(node)
    return list(groups.values())

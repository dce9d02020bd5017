"""``vizcli shapes`` as one request: what the flags asked for, run by the right core function, then written.

The command line fills a ``ShapesRequest`` and calls ``run_request``; Python callers can do the same, or
call the core functions it dispatches to directly: ``run_shapes``/``run_any_shapes`` (one model),
``compare_models`` (several), ``diff_checkpoints`` (two checkpoints), ``sweep_seq_lens`` (text lengths).
Every check on the request happens before a model is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vizcli.common.errors import BadInput, RunFailure

FORMAT_BY_EXTENSION = {"json": "json", "csv": "csv", "md": "markdown", "mmd": "mermaid", "txt": "table"}
PNG_ONLY = ("stage_strip", "channel_grid")


@dataclass
class ShapesRequest:
    """Everything ``vizcli shapes`` was asked, by the core's parameter names."""

    images: list[str] = field(default_factory=list)
    input_size: list[str] = field(default_factory=list)
    keep_size: bool = False
    depth: int = 3
    output_format: str | None = None
    output: str | None = None
    check: bool = False
    models: list[str] = field(default_factory=lambda: ["resnet18"])
    model_arg: list[str] = field(default_factory=list)
    text: str | None = None
    seq_len: str | None = None
    weights: list[str] = field(default_factory=list)
    seed: int = 0
    dtype: str = "float32"
    train: bool = False
    optimizer: str = "adam"
    batch_size: int = 1
    compare: bool = False
    plot: str | None = None
    device: str = "auto"
    threads: int | None = None
    max_pixels: int | None = None
    sort: str = "order"
    min_change: float = 0.0
    stats: bool = False
    stage_strip: str | None = None
    channel_grid: list[str] = field(default_factory=list)

    @property
    def mode(self) -> str:
        """``models`` (several --model), ``checkpoints`` (two --weights), ``sweep`` (several --seq-len) or ``single``."""
        from vizcli.shapes.sweep import parse_seq_lens

        if len(self.models) > 1:
            return "models"
        if len(self.weights) > 1:
            return "checkpoints"
        lengths = parse_seq_lens(self.seq_len)
        return "sweep" if lengths is not None and len(lengths) > 1 else "single"


@dataclass
class ShapesOutcome:
    """What ran, in the form its writer needs: a report, a model comparison, a checkpoint diff or a sweep."""

    request: ShapesRequest
    kind: str
    result: Any
    diagram_check: Any = None
    output_format: str = "table"


def run_request(request: ShapesRequest) -> ShapesOutcome:
    """Check ``request``, run what it asks, and return the outcome (nothing is printed here)."""
    from vizcli.common.console import warn
    from vizcli.common.files import choose_format
    from vizcli.common.runtime import set_threads

    fmt = choose_format(request.output, request.output_format, FORMAT_BY_EXTENSION, "table")
    mode = request.mode
    _check_mode_flags(request, mode)
    _check_files(request)
    set_threads(request.threads, warn)
    if mode == "models":
        from vizcli.shapes.model_comparison import compare_models

        return ShapesOutcome(request, mode, compare_models(request.models, _model_options(request)), output_format=fmt)
    if mode == "checkpoints":
        from vizcli.shapes.checkpoint_diff import diff_checkpoints

        diff = diff_checkpoints(request.models[0], request.weights[0], request.weights[1], request.images, _one(request.input_size),
                                request.seed, request.device, request.sort, request.min_change, statistics=request.stats,
                                keep_size=request.keep_size, max_pixels=request.max_pixels)
        return ShapesOutcome(request, mode, diff, output_format=fmt)
    if mode == "sweep":
        from vizcli.shapes.sweep import parse_seq_lens, sweep_seq_lens

        return ShapesOutcome(request, mode, sweep_seq_lens(request.models[0], parse_seq_lens(request.seq_len) or [], request.seed,
                                                           request.device), output_format=fmt)
    return _run_single(request, fmt)


def _one(values: list[str]) -> str | None:
    return values[0] if values else None


def _check_files(request: ShapesRequest) -> None:
    from vizcli.common.files import check_writable, refuse_overwriting_inputs
    from vizcli.shapes.any_model import model_files

    # every file read: a model's .py, .pt2 or folder (config.json, weights) too
    inputs = [*request.images, *request.weights, *(file for spec in request.models for file in model_files(spec))]
    check_writable(request.output)
    refuse_overwriting_inputs(request.output, inputs)
    pictures = [("plot", request.plot)] + [("stage_strip", request.stage_strip)]
    pictures += [("channel_grid", _grid_target(text)[1]) for text in request.channel_grid]
    written = [path for _, path in pictures if path is not None] + ([request.output] if request.output else [])
    for parameter, path in pictures:
        if path is None:
            continue
        if parameter in PNG_ONLY and not path.lower().endswith(".png"):
            raise BadInput("give a .png file for the picture", parameter=parameter, value=path)
        if parameter == "plot" and request.mode == "single":
            from vizcli.shapes.graph import check_plot_path

            check_plot_path(path, request.output)
        elif parameter == "plot" and not path.lower().endswith(".png"):
            raise BadInput("a comparison's --plot is a .png chart", parameter="plot", value=path)
        if written.count(path) > 1:
            raise BadInput("is written twice; give each picture and output its own file", parameter=parameter, value=path)
        check_writable(path, parameter=parameter)
        refuse_overwriting_inputs(path, inputs, parameter=parameter)


def _grid_target(text: str) -> tuple[str, str]:
    """``layer4.1.conv2=grid.png`` → (layer, path)."""
    layer, equals, path = text.partition("=")
    if not equals or not layer.strip() or not path.strip():
        raise BadInput("give LAYER=FILE.png (a row's name, e.g. layer4.1.conv2=grid.png)", parameter="channel_grid", value=text)
    return layer.strip(), path.strip()


def _check_mode_flags(request: ShapesRequest, mode: str) -> None:
    """Refuse flags that mean nothing in ``mode`` (before any model loads)."""
    single_only = {"check": request.check, "compare": request.compare, "train": request.train,
                   "stage_strip": request.stage_strip, "channel_grid": request.channel_grid}
    if request.stats and mode in ("models", "sweep"):
        raise BadInput(f"is for one model run or a checkpoint comparison; drop it when comparing {mode}", parameter="stats",
                       value=True)
    if mode != "single":
        for name, value in single_only.items():
            if value:
                raise BadInput(f"is for one model run; drop it when comparing or sweeping ({mode})", parameter=name, value=value)
    if mode != "checkpoints" and (request.sort != "order" or request.min_change):
        raise BadInput("sorts and filters a checkpoint comparison (--weights A --weights B)", parameter="sort" if
                       request.sort != "order" else "min_change", value=request.sort if request.sort != "order" else request.min_change)
    if len(request.weights) > 2 or (len(request.weights) > 1 and len(request.models) > 1 and len(request.weights) != len(request.models)):
        raise BadInput("give two --weights to compare checkpoints of one model, or one per --model", parameter="weights",
                       value=request.weights[-1])
    if mode == "sweep" and (request.plot is not None or request.compare):
        raise BadInput(f"--{'plot' if request.plot is not None else 'compare'} is for one traced run; give one --seq-len")
    if mode == "sweep":
        _check_sweep(request)
    if mode in ("models", "checkpoints") and request.seq_len and "," in request.seq_len:
        raise BadInput("a sweep of lengths is for one text model; give one length when comparing", parameter="seq_len",
                       value=request.seq_len)
    if mode == "checkpoints" and (request.model_arg or request.text or request.seq_len):
        raise BadInput("checkpoints are compared for torchvision models", parameter="weights", value=request.weights[0])
    if request.check and request.models[0] != "resnet18":
        raise BadInput(f"--check compares with the notes' ResNet18 diagram; drop --model {request.models[0]} or --check")


def _check_sweep(request: ShapesRequest) -> None:
    """``--seq-len 16,64,256``: a text model and its lengths only."""
    from vizcli.shapes.any_model import FACTORY, is_any_model

    model = request.models[0]
    if not is_any_model(model) or FACTORY.match(model):
        raise BadInput("a --seq-len sweep is for text models (a BERT-family folder, minilm)", parameter="model", value=model)
    if request.images or request.input_size or request.text is not None or request.model_arg or request.weights or request.check:
        raise BadInput("a --seq-len sweep takes the model and the lengths only; drop images, --input-size, --text, --model-arg, "
                       "--weights and --check")


def _model_options(request: ShapesRequest) -> Any:
    from vizcli.shapes.any_model import parse_model_args
    from vizcli.shapes.model_comparison import ModelOptions

    return ModelOptions(images=request.images, input_size=request.input_size, keep_size=request.keep_size,
                        weights=request.weights, model_args=parse_model_args(request.model_arg), text=request.text,
                        seq_len=request.seq_len, seed=request.seed, device=request.device, max_pixels=request.max_pixels,
                        depth=request.depth)


def _activation_options(request: ShapesRequest) -> Any:
    if not (request.stats or request.stage_strip or request.channel_grid):
        return None
    from vizcli.shapes.activations import ActivationOptions

    return ActivationOptions(statistics=request.stats, maps=tuple(_grid_target(text)[0] for text in request.channel_grid),
                             strip=request.stage_strip is not None)


def _run_single(request: ShapesRequest, fmt: str) -> ShapesOutcome:
    from vizcli.shapes.diagram import check_diagram
    from vizcli.shapes.model_comparison import run_one_model
    from vizcli.shapes.report import MemoryOptions

    memory = MemoryOptions(request.dtype, request.train, request.optimizer, request.batch_size)
    report = run_one_model(request.models[0], _model_options(request), memory, _activation_options(request))
    if request.compare and report.runs[0].trace.error is None:
        from vizcli.shapes.compare import compare_counts

        report.comparison = compare_counts(report.model, report.runs[0].example, report.runs[0].trace)
    diagram_check = check_diagram(report.runs[0].trace, report.model) if request.check else None
    return ShapesOutcome(request, "single", report, diagram_check, fmt)


def write_outcome(outcome: ShapesOutcome) -> None:
    """Print or write the outcome, draw its pictures (each confirmed on stderr), then raise for a failed run."""
    request = outcome.request
    if outcome.kind == "single":
        _write_single(outcome)
        return
    if outcome.kind == "sweep":
        from vizcli.shapes.sweep import print_sweep

        print_sweep(outcome.result, outcome.output_format, request.output)
    else:
        from vizcli.shapes.comparison_render import print_checkpoint_diff, print_model_comparison

        printer = print_model_comparison if outcome.kind == "models" else print_checkpoint_diff
        printer(outcome.result, outcome.output_format, request.output, request.plot)
    _confirm(request.output)


def _confirm(path: str | None) -> None:
    from vizcli.common.console import info

    if path is not None and path != "-":
        info(f"wrote {path}")


def _write_single(outcome: ShapesOutcome) -> None:
    from vizcli.shapes.render import print_preprocessing, print_shapes

    request, report = outcome.request, outcome.result
    failed = [run for run in report.runs if run.trace.error is not None]
    check = outcome.diagram_check
    if not failed and (check is None or check.all_hold):  # else stderr is the one Error: line
        print_preprocessing(report)
    print_shapes(report, request.depth, outcome.output_format, check, request.output)
    _confirm(request.output)
    if failed:  # the one Error: line, and no pictures of a pass that did not finish
        raise RunFailure(failed[0].failure_message())
    traced = report.runs[0].trace
    if request.plot is not None and traced.records:
        from vizcli.shapes.graph import records_at_depth, write_graph

        shown = records_at_depth(traced.records, request.depth, traced.group_ops)
        title = f"{report.model_name} · input {'×'.join(map(str, traced.input_shape))} · depth {request.depth}"
        write_graph(shown, traced.input_shape, title, report.task == "text", request.plot)
        _confirm(request.plot)
    _write_maps(request, report)
    if check is not None and not check.all_hold:
        first = check.differing[0]
        raise RunFailure(f"{len(check.differing)} sizes stated by the notes' diagram differ from the measured run "
                         f"(first: {first.node.id} states {first.node.size}, measured {first.measured})")


def _write_maps(request: ShapesRequest, report: Any) -> None:
    from vizcli.shapes.feature_maps import draw_channel_grid, draw_stage_strip

    kept = report.runs[0].trace.kept_maps
    if kept is None:
        return
    for text in request.channel_grid:
        layer, path = _grid_target(text)
        draw_channel_grid(layer, kept.layers[layer], path)
        _confirm(path)
    if request.stage_strip is not None and kept.stages:
        draw_stage_strip(kept, request.stage_strip, f"{report.model_name} · {report.runs[0].label}")
        _confirm(request.stage_strip)

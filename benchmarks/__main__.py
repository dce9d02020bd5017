"""Run every benchmark of vizcli against its peers and write benchmarks/RESULTS.md.

    python -m benchmarks            # the full suite (about 10 minutes on 2 cores)
    python -m benchmarks --quick    # a smaller version (under 2 minutes)
    make bench                      # installs the `bench` extra first

Every figure is a whole process (start-up included), run round-robin with its peers after a
warm-up; ratios are medians of per-round ratios, so a noisy machine affects both sides alike.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from benchmarks.corpus import sentences
from benchmarks.harness import Measured, alternate, paired_ratio, run_once

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = Path(__file__).resolve().parent / "scripts"
CHELSEA = ROOT / "examples" / "chelsea.png"
PYTHON = sys.executable
VIZCLI = [PYTHON, "-m", "vizcli"]
THREADS = "2"


@dataclass
class Goal:
    text: str  # "vizcli --help ≤ 2× import typer"
    value: float
    limit: float
    higher_is_better: bool = False

    @property
    def met(self) -> bool:
        return self.value >= self.limit if self.higher_is_better else self.value <= self.limit

    def line(self) -> str:
        if self.met:
            return f"- **met**: {self.text} — measured {self.value:.3g}"
        gap = (self.limit / self.value - 1) if self.higher_is_better else (self.value / self.limit - 1)
        return f"- **not met**: {self.text} — measured {self.value:.4g}, {gap:.1%} short of the goal"


@dataclass
class Section:
    title: str
    about: str
    measured: list[Measured]
    ratios: list[tuple[str, float]] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    table: list[str] = field(default_factory=list)  # an extra markdown table, after the notes

    def markdown(self) -> str:
        lines = [f"## {self.title}", "", self.about, ""]
        if self.measured:
            lines += ["| command | runs | median s | min s | max s | peak RSS MiB |", "|---|---:|---:|---:|---:|---:|"]
        for m in self.measured:
            lines.append(f"| {m.label} | {len(m.seconds)} | {m.median:.3f} | {min(m.seconds):.3f} | {max(m.seconds):.3f} | "
                         f"{m.peak_rss / 2**20:.0f} |")
        lines.append("")
        lines += [f"- ratio {name}: **{value:.3f}×**" for name, value in self.ratios]
        lines += [goal.line() for goal in self.goals]
        lines += [f"- {note}" for note in self.notes]
        if self.table:
            lines += ["", *self.table]
        return "\n".join(lines) + "\n"


def _env():
    return dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONWARNINGS="ignore")


def bench_startup(rounds: int) -> Section:
    vizcli = Measured("`vizcli --help`", [*VIZCLI, "--help"])
    typer = Measured('`python -c "import typer"`', [PYTHON, "-c", "import typer"])
    alternate([vizcli, typer], rounds, env=_env())
    ratio = paired_ratio(vizcli, typer)
    return Section("Start-up", "`vizcli --help` never imports torch.", [vizcli, typer],
                   [("vizcli --help / import typer", ratio)], [Goal("`vizcli --help` ≤ 2× `import typer`", ratio, 2.0)])


def bench_shapes(rounds: int) -> Section:
    vizcli = Measured("`vizcli shapes` (69 rows, totals, timing)", [*VIZCLI, "shapes", "--threads", THREADS])
    peer = Measured("`torchinfo.summary(resnet18(), (1, 3, 224, 224))`", [PYTHON, str(SCRIPTS / "torchinfo_summary.py")])
    alternate([vizcli, peer], rounds, env=_env())
    ratio = paired_ratio(vizcli, peer)
    return Section("shapes vs torchinfo", "ResNet18 at 224×224, seeded random weights, whole process.", [vizcli, peer],
                   [("vizcli / torchinfo", ratio)], [Goal("`vizcli shapes` no slower than the torchinfo script (≤ 1.0×)", ratio, 1.0)])


def bench_shapes_checkpoints(rounds: int, folder: Path) -> Section:
    """Two ResNet18 checkpoints compared per layer, and every row's statistics and change on one image."""
    import torch
    import torchvision

    torch.manual_seed(0)
    state = torchvision.models.resnet18().state_dict()
    torch.save(state, folder / "a.pth")
    generator = torch.Generator().manual_seed(1)
    tuned = {key: value + 0.01 * torch.randn(value.shape, generator=generator) if value.is_floating_point() else value
             for key, value in state.items()}
    torch.save(tuned, folder / "b.pth")
    vizcli = Measured("`vizcli shapes --weights A --weights B chelsea.png --stats -f json`",
                      [*VIZCLI, "shapes", "--weights", str(folder / "a.pth"), "--weights", str(folder / "b.pth"), str(CHELSEA),
                       "--stats", "--format", "json", "--threads", THREADS])
    peer = Measured("plain script: state-dict diff + forward hooks on A and B",
                    [PYTHON, str(SCRIPTS / "plain_checkpoint_hooks.py"), str(folder / "a.pth"), str(folder / "b.pth"), str(CHELSEA)])
    alternate([vizcli, peer], rounds, env=_env())
    ratio = paired_ratio(vizcli, peer)
    return Section("shapes: checkpoint against checkpoint", "ResNet18, two checkpoints (B = A + 0.01·noise on every floating "
                   "tensor), chelsea.png: per-layer ‖B−A‖/‖A‖ and cosine, then every row's output statistics and change "
                   "on the image under A and B; whole process. vizcli's rows include the functional adds and the flatten "
                   "(69 rows), the script's hooks see the 60 leaf modules.", [vizcli, peer],
                   [("vizcli / plain hooks script", ratio)],
                   [Goal("`vizcli shapes --weights A --weights B --stats` ≤ 1.2× the plain hooks script", ratio, 1.2)])


def bench_roi(rounds: int, counts: list[int], folder: Path) -> Section:
    import random

    measured, ratios, goals = [], [], []
    generator = random.Random(0)
    for count in counts:
        boxes = []
        for _ in range(count):
            x1, y1 = generator.uniform(0, 400), generator.uniform(0, 250)
            boxes.append([x1, y1, x1 + generator.uniform(8, 50), y1 + generator.uniform(8, 50)])
        path = folder / f"boxes{count}.json"
        path.write_text(json.dumps(boxes))
        vizcli = Measured(f"`vizcli roi` {count} boxes → .npy", [*VIZCLI, "roi", str(CHELSEA), "--boxes-file", str(path), "-o",
                                                                    str(folder / "v.npy"), "--quiet", "--threads", THREADS])
        plain = Measured(f"plain script {count} boxes → .npy", [PYTHON, str(SCRIPTS / "plain_roi.py"), str(CHELSEA), str(path),
                                                               str(folder / "p.npy")])
        alternate([vizcli, plain], rounds, env=dict(_env(), OMP_NUM_THREADS=THREADS))
        ratio = paired_ratio(vizcli, plain)
        measured += [vizcli, plain]
        ratios.append((f"vizcli / plain, {count} boxes", ratio))
        goals.append(Goal(f"`vizcli roi` with {count} boxes within 1.2× of the plain script", ratio, 1.2))
    return Section("roi end to end", "chelsea.png (451×300), layer3, RoIAlign 7×7, sampling ratio 2, aligned; the "
                   "plain script loads the image, runs the backbone and calls `torchvision.ops.roi_align`.",
                   measured, ratios, goals)


def _dataset(folder: Path, count: int, size: tuple[int, int]) -> Path:
    """``count`` distinct JPEG photos-sized images (crops of the two bundled photos, shifted)."""
    from PIL import Image

    images = folder / f"images{count}"
    images.mkdir(exist_ok=True)
    sources = [Image.open(ROOT / "examples" / name).convert("RGB") for name in ("chelsea.png", "coffee.png")]
    for index in range(count):
        source = sources[index % 2].resize((size[0] + 64, size[1] + 64))
        dx, dy = index % 64, (index * 7) % 64
        source.crop((dx, dy, dx + size[0], dy + size[1])).save(images / f"{index:05d}.jpg", quality=90)
    return images


def bench_roi_dataset(small: int, large: int, folder: Path, bfloat16: int) -> Section:
    """A folder of images with 4 boxes each → Parquet, against the plain per-image loop; peak memory at
    two dataset sizes; bfloat16 against float32 on ``bfloat16`` images (0: not run)."""
    import numpy as np
    import pyarrow.parquet as pq

    size = (320, 256)  # multiples of 32: vizcli pads nothing, so its features equal the plain script's
    boxes = folder / "dataset_boxes.csv"
    boxes.write_text("10,10,90,70,a\n100,40,220,200,b\n30,120,150,230,c\n200,20,310,110,d\n")
    big, little = _dataset(folder, large, size), _dataset(folder, small, size)
    tiny = _dataset(folder, bfloat16, size) if bfloat16 else little
    common = ["--annotations", str(boxes), "--quiet", "--threads", THREADS, "--batch-size", "8", "--decode-threads", "2"]
    out = {name: folder / f"{name}.parquet" for name in ("f32", "bf16", "small", "tiny")}
    vizcli32 = Measured(f"`vizcli roi DATASET -o out.parquet`, {large:,} images", [*VIZCLI, "roi", str(big), *common, "-o", str(out["f32"])])
    plain = Measured(f"plain per-image loop → .npy, {large:,} images", [PYTHON, str(SCRIPTS / "plain_roi_dataset.py"), str(big), str(boxes),
                                                                        str(folder / "plain.npy")])
    smaller = Measured(f"`vizcli roi DATASET -o out.parquet`, {small:,} images", [*VIZCLI, "roi", str(little), *common, "-o", str(out["small"])])
    vizcli16 = Measured(f"`--dtype bfloat16`, {bfloat16:,} images", [*VIZCLI, "roi", str(tiny), *common, "--dtype", "bfloat16", "-o", str(out["bf16"])])
    vizcli32_tiny = Measured(f"`--dtype float32`, {bfloat16:,} images", [*VIZCLI, "roi", str(tiny), *common, "-o", str(out["tiny"])])
    env = dict(_env(), OMP_NUM_THREADS=THREADS)
    alternate([vizcli32, plain, smaller], 1, warmup=0, env=env)
    measured, ratios = [vizcli32, plain, smaller], [("plain loop time / vizcli time (float32)", plain.median / vizcli32.median)]
    notes = []
    if bfloat16:
        alternate([vizcli16, vizcli32_tiny], 1, warmup=0, env=env)
        a = np.array(pq.read_table(out["tiny"]).column("features_align").to_pylist(), dtype=np.float64)
        b = np.array(pq.read_table(out["bf16"]).column("features_align").to_pylist(), dtype=np.float64)
        cosine16 = float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())
        measured += [vizcli16, vizcli32_tiny]
        ratios.append(("vizcli bfloat16 time / float32 time", vizcli16.median / vizcli32_tiny.median))
        notes.append(f"bfloat16 against float32: min cosine {cosine16:.5f}, max |difference| {float(np.abs(a - b).max()):.3g} "
                     "(this CPU has no bfloat16 units, so bfloat16 is emulated and slower here; vizcli warns)")
    else:
        notes.append("bfloat16 is not run in --quick mode (emulated on CPUs without bfloat16 units: minutes)")
    rows = np.array(pq.read_table(out["f32"]).column("features_align").to_pylist(), dtype=np.float64)
    reference = np.load(folder / "plain.npy").reshape(len(rows), -1)
    speed, growth = plain.median / vizcli32.median, vizcli32.peak_rss / smaller.peak_rss
    notes = [f"throughput: {4 * large / vizcli32.median:,.0f} boxes/s, {large / vizcli32.median:.1f} images/s (float32)",
             f"float32 rows equal the plain script's features: max |difference| {float(np.abs(rows - reference).max()):.2e}",
             *notes,
             f"peak RSS {vizcli32.peak_rss / 2**20:.0f} MiB for {large:,} images, {smaller.peak_rss / 2**20:.0f} MiB for {small:,}: "
             "rows leave memory a unit (--shard-size, 16 MB of features) at a time, so both runs hold at most one unit"]
    return Section(
        "roi over a dataset",
        f"{large:,} distinct {size[0]}×{size[1]} JPEGs (shifted crops of the bundled photos), 4 boxes each from a "
        "headerless CSV, resnet18 layer3, RoIAlign 7×7, 2 threads, one run each (the runs are long); vizcli decodes "
        "in 2 threads and batches 8 images of one size; the plain script loops image by image.",
        measured, ratios,
        [Goal("dataset throughput ≥ the plain per-image loop's", speed, 1.0, True),
         Goal(f"peak memory does not grow with the dataset ({large:,} / {small:,} images ≤ 1.10)", growth, 1.10)],
        notes,
    )


def bench_roi_detect(small: int, large: int, folder: Path) -> Section:
    """Detect, then pool over a folder of images → Parquet, against the plain per-image script that calls
    the same torchvision detector and box head; peak memory at two dataset sizes."""
    import numpy as np
    import pyarrow.parquet as pq

    size, detector = (320, 256), "fasterrcnn_mobilenet_v3_large_320_fpn"
    big, little = _dataset(folder, large, size), _dataset(folder, small, size)
    common = ["--detector", detector, "--op", "box-head", "--quiet", "--threads", THREADS, "--batch-size", "8",
              "--decode-threads", "2"]
    out, small_out = folder / "detect.parquet", folder / "detect_small.parquet"
    vizcli = Measured(f"`vizcli detect DATASET --op box-head -o out.parquet`, {large:,} images",
                      [*VIZCLI, "detect", str(big), *common, "-o", str(out)])
    plain = Measured(f"plain per-image detector + box head → .npy, {large:,} images",
                     [PYTHON, str(SCRIPTS / "plain_detect_dataset.py"), str(big), str(folder / "plain_detect"), detector])
    smaller = Measured(f"`vizcli detect DATASET …`, {small:,} images", [*VIZCLI, "detect", str(little), *common, "-o", str(small_out)])
    env = dict(_env(), OMP_NUM_THREADS=THREADS)
    alternate([vizcli, plain, smaller], 1, warmup=0, env=env)
    table = pq.read_table(out)
    vectors = np.array(table.column("features_box_head").to_pylist(), dtype=np.float64)
    boxes = np.array(table.column("box").to_pylist(), dtype=np.float64)
    plain_vectors = np.load(str(folder / "plain_detect") + ".vectors.npy").astype(np.float64)
    plain_boxes = np.load(str(folder / "plain_detect") + ".boxes.npy").astype(np.float64)
    same_count = vectors.shape == plain_vectors.shape
    speed, growth = plain.median / vizcli.median, vizcli.peak_rss / smaller.peak_rss
    notes = [f"throughput: {large / vizcli.median:.2f} images/s vizcli, {large / plain.median:.2f} images/s the plain script",
             f"rows: {len(vectors):,} (vizcli) and {len(plain_vectors):,} (plain): at least 10 and at most 36 boxes an image",
             (f"equal outputs: boxes max |difference| {float(np.abs(boxes - plain_boxes).max()):.2e}, box-head vectors "
              f"{float(np.abs(vectors - plain_vectors).max()):.2e}") if same_count else "the row counts differ",
             f"peak RSS {vizcli.peak_rss / 2**20:.0f} MiB for {large:,} images, {smaller.peak_rss / 2**20:.0f} MiB for {small:,}",
             "seeded random weights: the boxes are meaningless, the arithmetic is the trained detector's"]
    return Section(
        "roi detect-then-pool over a dataset",
        f"{large:,} distinct {size[0]}×{size[1]} JPEGs; {detector} (its own transform: 400×320), score ≥ 0.2, 10 to 36 "
        "boxes an image, TwoMLPHead's 1024 values a box; 2 threads, one run each. vizcli decodes and transforms in 2 "
        "threads and batches 8 images of one size; the plain script runs GeneralizedRCNN's steps image by image.",
        [vizcli, plain, smaller], [("plain script time / vizcli time", speed)],
        [Goal("detect-then-pool throughput ≥ 0.95× the plain script's", speed, 0.95, True),
         Goal("the outputs are equal (1 = equal row counts, box-head vectors within 1e-4)",
              float(same_count and float(np.abs(vectors - plain_vectors).max()) <= 1e-4), 1.0, True),
         Goal(f"peak memory does not grow with the dataset ({large:,} / {small:,} images ≤ 1.10)", growth, 1.10)],
        notes,
    )


def bench_embed_utilisation(count: int) -> Section:
    """Useful matmul FLOP/s of ``vizcli embed`` against the same process's GEMM rate (see the script)."""
    import subprocess

    rows, measured = {}, []
    for dtype in ("float32", "bfloat16"):
        argv = [PYTHON, str(SCRIPTS / "embed_utilisation.py"), str(count), dtype, THREADS]
        result = subprocess.run(argv, capture_output=True, text=True, env=dict(_env(), PYTHONPATH=str(ROOT)), check=True, cwd=ROOT)
        rows[dtype] = json.loads(result.stdout.strip().splitlines()[-1])
        entry = Measured(f"encode {count:,} sentences, {dtype} (in process)", argv)
        entry.seconds.append(rows[dtype]["seconds"])
        measured.append(entry)
    f32, b16 = rows["float32"], rows["bfloat16"]
    notes = [f"{dtype}: {row['tokens']:,} tokens, {row['useful_flops'] / 1e12:.3f} TFLOP of matmul work, "
             f"{row['useful_gflops_per_s']:.0f} GFLOP/s useful against a {row['gemm_gflops_per_s']:.0f} GFLOP/s GEMM "
             f"({row['utilisation']:.0%}); fixed batches of 32 texts: {row['utilisation_batch32']:.0%} "
             f"({row['seconds_batch32']:.2f} s against {row['seconds']:.2f} s)" for dtype, row in rows.items()]
    notes.append("useful FLOPs per layer and text of L tokens: 2 · (L · (4H² + 2HI) + 2L²H); GEMM: best of 20 F.linear [4096, H] by [I, H], the kernel the layers call")
    return Section(
        "embed utilisation", f"{count:,} benchmark sentences, mean pooling, vizcli's default batches (at most 256 texts and "
        "4,096 padded tokens), 2 threads, the bundled model, best of 2 in float32 (1 in bfloat16); the peak RSS column is "
        "not measured here (in-process timing).",
        measured, [("useful / GEMM, float32", f32["utilisation"]), ("useful / GEMM, bfloat16", b16["utilisation"])],
        [Goal("float32: useful matmul FLOP/s ≥ 80% of the GEMM rate", f32["utilisation"], 0.8, True),
         Goal("bfloat16: useful matmul FLOP/s ≥ 70% of the GEMM rate", b16["utilisation"], 0.7, True)],
        notes,
    )


def _cosine_min(a_path: Path, b_path: Path) -> float:
    import numpy as np

    a, b = np.load(a_path), np.load(b_path)
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return float(cosine.min())


def bench_embed(rounds: int, count: int, folder: Path) -> Section:
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(sentences(count)) + "\n", encoding="utf-8")
    out = {name: folder / f"{name}.npy" for name in ("fp32", "bf16", "st", "hf", "hfbf16")}
    common = ["--file", str(corpus), "-p", "mean", "--batch-size", "32", "--threads", THREADS, "--quiet"]
    vizcli32 = Measured("`vizcli embed` float32", [*VIZCLI, "embed", *common, "-o", str(out["fp32"])])
    vizcli16 = Measured("`vizcli embed --dtype bfloat16`", [*VIZCLI, "embed", *common, "--dtype", "bfloat16", "-o", str(out["bf16"])])
    st = Measured("sentence-transformers `encode` float32", [PYTHON, str(SCRIPTS / "st_encode.py"), str(corpus), str(out["st"]), THREADS, "32"])
    hf = Measured("plain transformers loop float32", [PYTHON, str(SCRIPTS / "hf_loop.py"), str(corpus), str(out["hf"]), THREADS, "32", "float32"])
    hf16 = Measured("plain transformers loop bfloat16", [PYTHON, str(SCRIPTS / "hf_loop.py"), str(corpus), str(out["hfbf16"]), THREADS, "32", "bfloat16"])
    commands = [vizcli32, vizcli16, st, hf, hf16]
    alternate(commands, rounds, env=_env())
    speed32 = paired_ratio(st, vizcli32)
    speed16 = paired_ratio(st, vizcli16)
    cosine_st = _cosine_min(out["fp32"], out["st"])
    cosine_16 = _cosine_min(out["fp32"], out["bf16"])
    section = Section(
        f"embed throughput ({count} sentences)",
        f"{count} distinct sentences from the standard library's docstrings, mean pooling, batch 32, {THREADS} threads, "
        "the bundled all-MiniLM-L6-v2, each a whole process writing .npy.",
        commands,
        [("throughput vizcli float32 / sentence-transformers", speed32), ("throughput vizcli bfloat16 / sentence-transformers", speed16),
         ("throughput plain loop float32 / sentence-transformers", paired_ratio(st, hf)),
         ("throughput plain loop bfloat16 / sentence-transformers", paired_ratio(st, hf16))],
        [Goal("float32 throughput ≥ 0.95× sentence-transformers'", speed32, 0.95, True),
         Goal("bfloat16 throughput ≥ 3× sentence-transformers'", speed16, 3.0, True),
         Goal("vectors equal sentence-transformers' (min cosine ≥ 0.99999)", cosine_st, 0.99999, True),
         Goal("bfloat16 vectors close to float32 (min cosine ≥ 0.999)", cosine_16, 0.999, True)],
        [f"sentences per second: vizcli float32 {count / vizcli32.median:.0f}, bfloat16 {count / vizcli16.median:.0f}, "
         f"sentence-transformers {count / st.median:.0f} (whole process, start-up included)"],
    )
    return section


def _quality(reference: Path, other: Path, neighbours: int = 10) -> tuple[float, float, float]:
    """(min cosine, mean cosine, recall@10) of ``other``'s vectors against ``reference``'s: recall@10 is
    the share of each text's 10 nearest neighbours (cosine, among all texts) that stay the same."""
    import numpy as np

    a, b = (np.load(path).astype(np.float64) for path in (reference, other))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    cosine = (a * b).sum(1)
    near = []
    for unit in (a, b):
        similarity = unit @ unit.T
        np.fill_diagonal(similarity, -np.inf)
        near.append(np.argsort(-similarity, axis=1)[:, :neighbours])
    recall = float(np.mean([len(set(x) & set(y)) / neighbours for x, y in zip(*near)]))
    return float(cosine.min()), float(cosine.mean()), recall


def _cpu_flags() -> str:
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "asimddp", "fphp")
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                have = set(line.split(":", 1)[1].split())
                return ", ".join(flag for flag in wanted if flag in have) or "none of " + ", ".join(wanted)
    except OSError:
        pass
    return "unknown"


RECEIPT_TEXTS = 200  # --dtype int8 runs these first texts in float32 too, for the receipt in the output's metadata


def bench_embed_precision(rounds: int, count: int, folder: Path) -> Section:
    """int8, bfloat16, auto and float32 against sentence-transformers' torch, onnx and onnx int8 backends, and
    OpenVINO's CPU plugin (float32 and its default precision) on the same ONNX export."""
    import json as json_module
    import subprocess

    from vizcli.embed.loading import bundled_model_path

    corpus = folder / "precision.txt"
    corpus.write_text("\n".join(sentences(count)) + "\n", encoding="utf-8")
    model = folder / "minilm"
    shutil.copytree(bundled_model_path(), model)
    subprocess.run([PYTHON, str(SCRIPTS / "st_backends.py"), "prepare", str(model)], check=True, env=_env(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = {}
    whole: dict[str, Measured] = {}
    for dtype in ("float32", "bfloat16", "int8", "auto"):
        out[dtype] = folder / f"vizcli-{dtype}.npy"
        receipt = ["--calibration", str(RECEIPT_TEXTS)] if dtype == "int8" else []
        whole[dtype] = Measured(f"`vizcli embed --dtype {dtype}{' ' + ' '.join(receipt) if receipt else ''}`",
                                [*VIZCLI, "embed", "--file", str(corpus), "-p", "mean", "--dtype", dtype, *receipt,
                                 "--threads", THREADS, "--quiet", "-o", str(out[dtype])])
    for backend in ("torch", "onnx", "onnx-int8"):
        out[backend] = folder / f"st-{backend}.npy"
        whole[backend] = Measured(f"sentence-transformers `{backend}`", [PYTHON, str(SCRIPTS / "st_backends.py"), str(model), str(corpus),
                                                                         str(out[backend]), THREADS, backend])
    for precision in ("default", "f32"):  # OpenVINO's CPU plugin on the same ONNX export as sentence-transformers' onnx
        name = f"openvino-{precision}"
        out[name] = folder / f"{name}.npy"
        whole[name] = Measured(f"OpenVINO CPU `{'its default precision' if precision == 'default' else 'f32'}` (same ONNX export)",
                               [PYTHON, str(SCRIPTS / "openvino_embed.py"), str(model), str(corpus), str(out[name]), THREADS, precision])
    alternate(list(whole.values()), rounds, env=_env())
    in_process = {}
    for name in whole:
        if name.startswith("openvino-"):
            argv = [PYTHON, str(SCRIPTS / "openvino_embed.py"), str(model), str(corpus), str(folder / "ip.npy"), THREADS,
                    name.split("-", 1)[1], "--in-process"]
        elif name in ("torch", "onnx", "onnx-int8"):
            argv = [PYTHON, str(SCRIPTS / "st_backends.py"), str(model), str(corpus), str(folder / "ip.npy"), THREADS, name, "--in-process"]
        else:
            argv = [PYTHON, str(SCRIPTS / "vizcli_inprocess.py"), str(corpus), str(folder / "ip.npy"), THREADS, name]
        printed = subprocess.run(argv, check=True, env=_env(), capture_output=True, text=True).stdout.strip().splitlines()[-1]
        in_process[name] = json_module.loads(printed)
    quality = {name: _quality(out["float32"], out[name]) for name in whole}
    one = {
        "vizcli": Measured('`vizcli embed "a cat" -p mean` (numpy, no torch)', [*VIZCLI, "embed", "a cat", "-p", "mean"]),
        "vizcli-int8": Measured('`vizcli embed "a cat" -p mean --dtype int8`', [*VIZCLI, "embed", "a cat", "-p", "mean", "--dtype", "int8"]),
        "st-torch": Measured("sentence-transformers `torch`, one sentence", [PYTHON, str(SCRIPTS / "st_backends.py"), str(model), "text:a cat",
                                                                              str(folder / "one.npy"), THREADS, "torch"]),
        "st-int8": Measured("sentence-transformers `onnx-int8`, one sentence", [PYTHON, str(SCRIPTS / "st_backends.py"), str(model), "text:a cat",
                                                                                 str(folder / "one.npy"), THREADS, "onnx-int8"]),
    }
    alternate(list(one.values()), rounds, env=_env())
    table = ["| path | in-process s | whole process s (median) | min cos | mean cos | recall@10 |", "|---|---:|---:|---:|---:|---:|"]
    for name, measured in whole.items():
        picked = f" → {in_process[name]['dtype']}" if name == "auto" or name.startswith("openvino-") else ""
        minimum, mean, recall = quality[name]
        table.append(f"| {measured.label}{picked} | {in_process[name]['seconds']:.2f} | {measured.median:.2f} | {minimum:.4f} | "
                     f"{mean:.5f} | {recall:.3f} |")
    ours, theirs = quality["int8"], quality["onnx-int8"]
    # the goal: vizcli's fastest mode among those at equal or better quality (mean cosine to float32) than OpenVINO's
    # fastest, no slower than it; the fastest vizcli mode of any quality is reported beside it
    openvino = min(("openvino-default", "openvino-f32"), key=lambda name: in_process[name]["seconds"])
    ov_name = openvino.split("-", 1)[1]
    vizcli_modes = ("float32", "bfloat16", "int8")
    fastest = min(vizcli_modes, key=lambda name: in_process[name]["seconds"])
    as_good = min((name for name in vizcli_modes if quality[name][1] >= quality[openvino][1] - 1e-9),
                  key=lambda name: in_process[name]["seconds"])
    against_openvino = in_process[as_good]["seconds"] / in_process[openvino]["seconds"]
    return Section(
        f"embed precision ({count} sentences and one)",
        f"{count} distinct sentences from the standard library's docstrings (the embed corpus), mean pooling, {THREADS} threads, "
        "each tool at its own default batch size (sentence-transformers 32 texts; vizcli 4,096 padded tokens), the bundled "
        "all-MiniLM-L6-v2. sentence-transformers' ONNX and int8 files are made locally by its own `save_pretrained` and "
        "`export_dynamic_quantized_onnx_model` (nothing downloaded). OpenVINO's CPU plugin runs that same `onnx/model.onnx`, "
        "batched as sentence-transformers batches (32, sorted by length), once with its own default precision and once forced to f32 "
        "(`scripts/openvino_embed.py`). Quality is against vizcli float32's vectors of the same run. "
        f"vizcli int8's whole process includes its quality receipt: the first {RECEIPT_TEXTS} texts again in float32 (`--calibration`). "
        f"CPU flags: {_cpu_flags()}.",
        [*whole.values(), *one.values()],
        [("whole process vizcli int8 / sentence-transformers onnx int8", paired_ratio(whole["int8"], whole["onnx-int8"])),
         ("in-process vizcli int8 / sentence-transformers onnx int8", in_process["int8"]["seconds"] / in_process["onnx-int8"]["seconds"]),
         (f"in-process vizcli's fastest ({fastest}, mean cos {quality[fastest][1]:.5f}) / OpenVINO's fastest ({ov_name}, "
          f"mean cos {quality[openvino][1]:.5f})", in_process[fastest]["seconds"] / in_process[openvino]["seconds"]),
         (f"in-process vizcli {as_good} (mean cos {quality[as_good][1]:.5f}) / OpenVINO {ov_name}", against_openvino),
         ("whole process vizcli auto / vizcli float32", paired_ratio(whole["auto"], whole["float32"])),
         ("whole process vizcli bfloat16 / vizcli float32", paired_ratio(whole["bfloat16"], whole["float32"])),
         ("one sentence vizcli / sentence-transformers torch", paired_ratio(one["vizcli"], one["st-torch"]))],
        [Goal("int8 min cosine > sentence-transformers onnx int8's (" + f"{theirs[0]:.4f})", ours[0], theirs[0] + 1e-9, True),
         Goal("int8 mean cosine > sentence-transformers onnx int8's (" + f"{theirs[1]:.5f})", ours[1], theirs[1] + 1e-9, True),
         Goal("int8 recall@10 > sentence-transformers onnx int8's (" + f"{theirs[2]:.3f})", ours[2], theirs[2] + 1e-9, True),
         Goal("int8 whole process ≤ sentence-transformers onnx int8's", paired_ratio(whole["int8"], whole["onnx-int8"]), 1.0),
         Goal("int8 in-process ≤ sentence-transformers onnx int8's", in_process["int8"]["seconds"] / in_process["onnx-int8"]["seconds"], 1.0),
         Goal(f"vizcli's fastest mode at OpenVINO's quality or better ({as_good}; mean cosine to float32 ≥ OpenVINO {ov_name}'s "
              f"{quality[openvino][1]:.5f}) in-process ≤ OpenVINO's fastest ({ov_name})", against_openvino, 1.0),
         Goal("auto never slower than float32 (whole process, ≤ 1.02× for noise)", paired_ratio(whole["auto"], whole["float32"]), 1.02),
         Goal("one sentence ≤ 0.6 s as a whole process (median)", one["vizcli"].median, 0.6)],
        [f"--dtype auto picked {in_process['auto']['dtype']} on this CPU"],
        table,
    )


def bench_int8_choices(count: int, folder: Path) -> Section:
    """vizcli's int8 against torch's stock dynamic quantization, in one process (see the script's docstring)."""
    import json as json_module
    import subprocess

    corpus = folder / "int8.txt"
    corpus.write_text("\n".join(sentences(count)) + "\n", encoding="utf-8")
    printed = subprocess.run([PYTHON, str(SCRIPTS / "int8_choices.py"), str(corpus), THREADS, str(folder)], check=True, env=_env(),
                             capture_output=True, text=True).stdout
    rows = [json_module.loads(line) for line in printed.splitlines() if line.startswith("{")]
    table = ["| variant | in-process s | min cos | mean cos | recall@10 |", "|---|---:|---:|---:|---:|"]
    for row in rows:
        minimum, mean, recall = _quality(folder / "float32.npy", Path(row["vectors"]))
        table.append(f"| {row['variant']} | {row['seconds']:.2f} | {minimum:.4f} | {mean:.5f} | {recall:.3f} |")
    return Section(f"embed int8 choices ({count} sentences)",
                   f"The embed corpus, mean pooling, {THREADS} threads, one encode each after a warm-up, quality against float32 "
                   "in the same process. Why vizcli quantizes activations per token: torch's stock dynamic quantization uses "
                   "one scale per batch, which padding rows and outlier tokens coarsen.", [], table=table)


def bench_cold(rounds: int, folder: Path) -> Section:
    import subprocess

    from vizcli.embed.loading import bundled_model_path

    model = folder / "minilm-onnx"
    shutil.copytree(bundled_model_path(), model)
    subprocess.run([PYTHON, str(SCRIPTS / "st_backends.py"), "prepare", str(model)], check=True, env=_env(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    vizcli = Measured('`vizcli embed "a cat" -p mean`', [*VIZCLI, "embed", "a cat", "-p", "mean"])
    numpy_script = Measured("vizcli's numpy encoder in a 5-line script (no CLI)", [PYTHON, str(SCRIPTS / "numpy_one.py"), "a cat",
                                                                                  str(folder / "one-numpy.npy")])
    ort_script = Measured("onnxruntime + tokenizers in a 12-line script (the ONNX route)",
                          [PYTHON, str(SCRIPTS / "ort_one.py"), str(model), "a cat", str(folder / "one-ort.npy")])
    st = Measured("sentence-transformers: load and encode \"a cat\"", [PYTHON, str(SCRIPTS / "st_encode.py"), "text:a cat",
                                                                       str(folder / "one.npy"), THREADS, "32"])
    alternate([vizcli, numpy_script, ort_script, st], rounds, env=_env())
    ratio = paired_ratio(vizcli, st)
    return Section("embed one sentence, cold", "A whole process that embeds one sentence (imports, model load, sha256 "
                   "check of the weights — remembered by file identity after the first run —, forward). The two scripts "
                   "compare the torch-free routes on equal terms, without vizcli's CLI and checks: numpy (what vizcli runs) "
                   "and ONNX Runtime on the same model exported by sentence-transformers.",
                   [vizcli, numpy_script, ort_script, st],
                   [("vizcli / sentence-transformers", ratio), ("numpy script / onnxruntime script", paired_ratio(numpy_script, ort_script))],
                   [Goal("one-sentence call ≤ 0.8× sentence-transformers'", ratio, 0.8),
                    Goal("one sentence ≤ 0.6 s (median, whole process)", vizcli.median, 0.6)])


def bench_memory(small: int, large: int, folder: Path) -> Section:
    """Peak RSS of a corpus run (``-o out.parquet``) on ``small`` and ``large`` distinct lines.

    Every line is distinct (no repeats): the first six words of a docstring sentence and the line's
    number, about 12 tokens, so the large run stays near ten minutes on two cores. float32, not
    bfloat16: memory growth does not depend on the dtype, and CPUs without native bfloat16 (no
    AVX512-BF16/AMX) run bfloat16 several times slower than float32.
    """
    base = sentences(2000)
    measured = []
    for count in (small, large):
        corpus = folder / f"lines{count}.txt"
        with corpus.open("w", encoding="utf-8") as handle:
            for index in range(count):
                handle.write(" ".join(base[index % len(base)].split()[:6]) + f" #{index}\n")
        output = folder / f"m{count}.parquet"
        command = Measured(f"`vizcli embed --file` {count:,} distinct lines → .parquet (float32)",
                           [*VIZCLI, "embed", "--file", str(corpus), "-p", "mean", "--quiet", "--threads", THREADS, "-o", str(output)])
        seconds, rss = run_once(command.argv, env=_env())
        command.seconds.append(seconds)
        command.peak_rss = rss
        measured.append(command)
        output.unlink()
    growth = measured[1].peak_rss / measured[0].peak_rss
    return Section("embed memory", f"Peak resident memory of a corpus run for {small:,} vs {large:,} distinct lines (no "
                   "repeats: six words of a docstring sentence and the line number, about 12 tokens each), written to "
                   "Parquet with the default 16 MB row groups.", measured,
                   [(f"peak RSS {large:,} / {small:,} lines", growth)],
                   [Goal(f"peak memory does not grow with the input ({large:,} / {small:,} lines ≤ 1.10)", growth, 1.10)])


def bench_ray(texts: int, images: int, folder: Path) -> Section:
    """``--engine ray`` (2 actors) against ``--engine local``: whole processes, Ray's start-up included; the driver's
    share of the CPU and the model builds from ``scripts/driver_cpu.py``."""

    size = (320, 256)
    corpus = folder / "ray_corpus.txt"
    base = sentences(texts)
    corpus.write_text("".join(f"{text} #{index}\n" for index, text in enumerate(base)), encoding="utf-8")
    boxes = folder / "ray_boxes.csv"
    boxes.write_text("10,10,90,70,a\n100,40,220,200,b\n30,120,150,230,c\n200,20,310,110,d\n")
    dataset = _dataset(folder, images, size)
    driver = [PYTHON, str(SCRIPTS / "driver_cpu.py")]
    embed = ["embed", "--file", str(corpus), "-p", "mean", "--quiet"]
    roi = ["roi", str(dataset), "--annotations", str(boxes), "--quiet", "--batch-size", "8"]
    runs = {
        "embed local": Measured(f"`vizcli embed` {texts:,} sentences, local engine, 2 threads",
                                [*driver, *embed, "--threads", THREADS, "-o", str(folder / "el.parquet")]),
        "embed ray": Measured("… `--engine ray --workers 2` (2 actors, 1 thread each)",
                              [*driver, *embed, "--engine", "ray", "--workers", "2", "-o", str(folder / "e2.parquet")]),
        "roi local": Measured(f"`vizcli roi` {images:,} images, local engine, 2 threads",
                              [*driver, *roi, "--threads", THREADS, "--decode-threads", "2", "-o", str(folder / "rl.parquet")]),
        "roi ray": Measured("… `--engine ray --workers 2`", [*driver, *roi, "--engine", "ray", "--workers", "2",
                                                              "-o", str(folder / "r2.parquet")]),
    }
    cpu = _driver_runs(runs, folder)
    with _tight_cluster() as address:  # workers = CPUs: a head of 0 CPUs and 2 nodes of 1 CPU (it used to wait for ever)
        tight = {
            "embed tight": Measured("… `--engine ray --workers 2 --ray-address` a cluster of 2 nodes × 1 CPU and a 0-CPU head",
                                    [*driver, *embed, "--engine", "ray", "--workers", "2", "--ray-address", address,
                                     "-o", str(folder / "et.parquet")]),
            "roi tight": Measured("… `--engine ray --workers 2 --ray-address` the same cluster",
                                  [*driver, *roi, "--engine", "ray", "--workers", "2", "--ray-address", address,
                                   "-o", str(folder / "rt.parquet")]),
        }
        cpu.update(_driver_runs(tight, folder))
    runs.update(tight)
    embed_ratio = runs["embed ray"].median / runs["embed local"].median
    roi_ratio = runs["roi ray"].median / runs["roi local"].median
    tight_ratios = [runs[f"{name} tight"].median / runs[f"{name} local"].median for name in ("embed", "roi")]
    shares = {name: cpu[name]["driver_cpu"] / max(cpu[name]["machine_cpu"], 1e-9) for name in ("embed ray", "roi ray")}
    notes = [f"{name}: the driver used {cpu[name]['driver_cpu']:.1f} CPU s of the machine's {cpu[name]['machine_cpu']:.1f} "
             f"({shares[name]:.1%}); {cpu[name]['builds']} model builds on the workers" for name in ("embed ray", "roi ray")]
    notes.append("Ray's times include starting a local Ray and each actor loading the model; the rows equal the local "
                 "engine's (tests/datasets/test_ray_engine.py)")
    notes.append("the local Ray vizcli starts gets exactly workers × threads CPUs (2 here): workers = CPUs in every Ray run above; "
                 "the tight-cluster runs join a ray.cluster_utils.Cluster on this machine (its 3 raylets share the 2 cores), "
                 "rows equal to the local engine's in tests/datasets/test_ray_cluster.py")
    return Section(
        "ray engine", f"{texts:,} distinct sentences (mean pooling) and {images:,} distinct {size[0]}×{size[1]} JPEGs with 4 boxes "
        "each (resnet18 layer3, RoIAlign 7×7), written to Parquet; one whole-process run each, in turn, on this 2-core machine.",
        list(runs.values()),
        [("embed: Ray (2 actors) / local time", embed_ratio), ("roi: Ray (2 actors) / local time", roi_ratio),
         ("embed: Ray on 2 nodes × 1 CPU, workers = CPUs / local time", tight_ratios[0]),
         ("roi: Ray on 2 nodes × 1 CPU, workers = CPUs / local time", tight_ratios[1])],
        [Goal(f"embed on Ray (2 workers) within 1.1× of the local engine, {texts:,} lines", embed_ratio, 1.1),
         Goal(f"roi on Ray (2 workers) within 1.1× of the local engine, {images:,} images", roi_ratio, 1.1),
         Goal("model builds per Ray run = workers (embed)", float(cpu["embed ray"]["builds"]), 2.0),
         Goal("model builds per Ray run = workers (roi)", float(cpu["roi ray"]["builds"]), 2.0),
         Goal("the driver's CPU ≤ 10% of the run's (embed)", shares["embed ray"], 0.10),
         Goal("the driver's CPU ≤ 10% of the run's (roi)", shares["roi ray"], 0.10)],
        notes,
    )


@contextlib.contextmanager
def _tight_cluster():
    """A Ray cluster on this machine whose CPUs equal the workers: a head of 0 CPUs and two nodes of 1 CPU; its address."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        yield cluster.address
    finally:
        cluster.shutdown()


def _driver_runs(runs: dict[str, Measured], folder: Path) -> dict[str, dict]:
    """Run each of ``runs`` once under ``scripts/driver_cpu.py``; its record (driver and machine CPU seconds, builds)."""
    cpu: dict[str, dict] = {}
    for name, measured in runs.items():
        record = folder / f"{name.replace(' ', '_')}.json"
        seconds, rss = run_once(measured.argv, env=dict(_env(), VIZCLI_DRIVER_CPU=str(record)))
        measured.seconds.append(seconds)
        measured.peak_rss = rss
        cpu[name] = json.loads(record.read_text())
    return cpu


def bench_ray_large(texts: int, folder: Path) -> Section:
    """``vizcli embed`` on ``texts`` distinct short lines (the memory section's: about 12 tokens each), Ray with
    2 actors against the local engine: the large case, where the old driver-bound design fell behind."""
    base = sentences(2000)
    corpus = folder / f"ray_lines{texts}.txt"
    with corpus.open("w", encoding="utf-8") as handle:
        for index in range(texts):
            handle.write(" ".join(base[index % len(base)].split()[:6]) + f" #{index}\n")
    driver = [PYTHON, str(SCRIPTS / "driver_cpu.py")]
    embed = ["embed", "--file", str(corpus), "-p", "mean", "--quiet"]
    runs = {
        "local": Measured(f"`vizcli embed` {texts:,} distinct short lines, local engine, 2 threads",
                          [*driver, *embed, "--threads", THREADS, "-o", str(folder / "large_local.parquet")]),
        "ray": Measured("… `--engine ray --workers 2` (2 actors, 1 thread each)",
                        [*driver, *embed, "--engine", "ray", "--workers", "2", "-o", str(folder / "large_ray.parquet")]),
    }
    cpu = _driver_runs(runs, folder)
    ratio = runs["ray"].median / runs["local"].median
    share = cpu["ray"]["driver_cpu"] / max(cpu["ray"]["machine_cpu"], 1e-9)
    rows = [cpu[name]["rows"] for name in ("local", "ray")]
    return Section(
        "ray engine, large corpus", f"{texts:,} distinct lines (six words of a docstring sentence and the line number, about "
        "12 tokens each; mean pooling, float32) written to Parquet; one whole-process run each, in turn, on this 2-core machine.",
        list(runs.values()),
        [("embed: Ray (2 actors) / local time", ratio)],
        [Goal(f"embed on Ray (2 workers) within 1.1× of the local engine, {texts:,} lines", ratio, 1.1),
         Goal("model builds per Ray run = workers (embed, large)", float(cpu["ray"]["builds"]), 2.0),
         Goal("the driver's CPU ≤ 10% of the run's (embed, large)", share, 0.10)],
        [f"rows written: local {rows[0]:,}, Ray {rows[1]:,}",
         f"the driver used {cpu['ray']['driver_cpu']:.1f} CPU s of the machine's {cpu['ray']['machine_cpu']:.1f} ({share:.1%}); "
         f"{cpu['ray']['builds']} model builds on the workers"],
    )


def _versions() -> str:
    parts = []
    for name in ("vizcli", "torch", "torchvision", "transformers", "sentence-transformers", "torchinfo", "tokenizers"):
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    return ", ".join(parts)


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def _merge_sections(previous: str, fresh: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The sections of an earlier results page, with ``fresh`` ones replacing those of the same title
    (new titles are appended); the Goals summary is rebuilt by the caller."""
    old: list[tuple[str, str]] = []
    for chunk in previous.split("\n## ")[1:]:
        title = chunk.split("\n", 1)[0].strip()
        if title != "Goals":
            old.append((title, "## " + chunk.rstrip("\n") + "\n"))
    replacements = dict(fresh)
    merged = [(title, replacements.pop(title, body)) for title, body in old]
    return merged + [(title, body) for title, body in fresh if title in replacements]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs and fewer rounds (under 2 minutes)")
    parser.add_argument("--output", default=str(Path(__file__).resolve().parent / "RESULTS.md"), help="where to write the results page")
    parser.add_argument("--only", action="append", help="run only these sections: startup, shapes, shapes-checkpoints, roi, roi-dataset, roi-detect, embed, embed-utilisation, cold, embed-int8-choices, embed-precision, memory, ray, ray-large")
    args = parser.parse_args(argv)
    rounds = 1 if args.quick else 5
    chosen = set(args.only or ["startup", "shapes", "shapes-checkpoints", "roi", "roi-dataset", "roi-detect", "embed", "embed-utilisation", "cold", "embed-int8-choices", "embed-precision", "memory", "ray", "ray-large"])
    started = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="vizcli-bench-"))
    sections = []
    try:
        plan = [
            ("startup", lambda: bench_startup(rounds * 2)),
            ("shapes", lambda: bench_shapes(rounds)),
            ("shapes-checkpoints", lambda: bench_shapes_checkpoints(rounds, folder)),
            ("roi", lambda: bench_roi(rounds, [1, 100, 1000] if args.quick else [1, 100, 10_000], folder)),
            ("roi-dataset", lambda: bench_roi_dataset(8 if args.quick else 250, 24 if args.quick else 1000, folder, 0 if args.quick else 16)),
            ("roi-detect", lambda: bench_roi_detect(8 if args.quick else 250, 24 if args.quick else 1000, folder)),
            ("embed", lambda: bench_embed(rounds, 100 if args.quick else 2000, folder)),
            ("embed-utilisation", lambda: bench_embed_utilisation(100 if args.quick else 2000)),
            ("cold", lambda: bench_cold(rounds, folder)),
            ("embed-int8-choices", lambda: bench_int8_choices(100 if args.quick else 2000, folder)),
            ("embed-precision", lambda: bench_embed_precision(min(rounds, 3), 100 if args.quick else 2000, folder)),
            ("memory", lambda: bench_memory(1000 if args.quick else 20_000, 4000 if args.quick else 200_000, folder)),
            ("ray", lambda: bench_ray(500 if args.quick else 20_000, 16 if args.quick else 1000, folder)),
            ("ray-large", lambda: bench_ray_large(2000 if args.quick else 200_000, folder)),
        ]
        for name, run in plan:
            if name in chosen:
                print(f"running {name} …", file=sys.stderr, flush=True)
                sections.append(run())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    elapsed = time.perf_counter() - started
    header = [
        "# vizcli benchmarks",
        "",
        "Regenerated by `python -m benchmarks" + (" --quick" if args.quick else "") + "` — do not edit by hand.",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {_machine()}",
        f"- versions: {_versions()}",
        f"- mode: {'quick' if args.quick else 'full'}, {rounds} round(s) after a warm-up, whole processes alternated; "
        f"suite took {elapsed:.0f} s",
        "",
    ]
    bodies = [(section.title, section.markdown()) for section in sections]
    if args.only and Path(args.output).exists():  # update those sections in place, keep the others
        bodies = _merge_sections(Path(args.output).read_text(encoding="utf-8"), bodies)
        header.insert(-1, f"- sections regenerated in this run: {', '.join(sorted(chosen))}; the others are from an earlier run")
    goal_lines = [line for _, body in bodies for line in body.splitlines() if line.startswith(("- **met**", "- **not met**"))]
    summary = ["## Goals", "", *goal_lines, ""]
    page = "\n".join(header + summary) + "\n" + "\n".join(body for _, body in bodies)
    Path(args.output).write_text(page, encoding="utf-8")
    print(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())

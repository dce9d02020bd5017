"""Which images a dataset run covers, in which order, with which boxes, and which shard each is in.

A dataset is an image folder (recursive, sorted, ``--glob``), a text file of image paths, or the
images an annotation file names (COCO, VOC); ``--images-root`` resolves relative names. Images
are identified by a stable id — COCO's id, else the path relative to the dataset — and
``--shard K/N`` keeps the images whose id hashes to K, so N machines split a dataset without
talking to each other.
"""

from __future__ import annotations

from pathlib import Path

from vizcli.common.errors import BadInput
from vizcli.common.files import checked_glob, checked_os_call, is_folder, require_file
from vizcli.datasets.keys import Shard
from vizcli.roi.annotations import AnnotatedImage, Annotations, attach, read_annotations

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
MAX_LIST_BYTES = 1 << 30


def list_images(dataset: str, glob: str | None = None, images_root: str | None = None) -> list[AnnotatedImage]:
    """The images of a folder (recursive, sorted by relative path) or of a list file (one path a line)."""
    root = Path(dataset)
    if is_folder(root):
        found = [path for path in checked_glob(root, glob or "**/*") if glob is not None or path.suffix.lower() in IMAGE_SUFFIXES]
        if not found:
            what = f"matching glob={glob!r}" if glob else f"with an image extension ({', '.join(sorted(IMAGE_SUFFIXES))})"
            raise BadInput(f"a folder with no files {what}", parameter="dataset", value=dataset)
        return [AnnotatedImage(image_id=path.relative_to(root).as_posix(), path=str(path)) for path in found]
    file = require_file(dataset, "dataset", "an image folder or a text file of image paths")
    size = checked_os_call(lambda: file.stat().st_size, "dataset", dataset)
    if size > MAX_LIST_BYTES:
        raise BadInput(f"{size:,} bytes; a list of image paths is at most {MAX_LIST_BYTES:,}", parameter="dataset", value=dataset)
    data = checked_os_call(file.read_bytes, "dataset", dataset)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        bad_line = data[: error.start].count(b"\n") + 1
        raise BadInput(f"line {bad_line} is not UTF-8; a list of image paths is UTF-8 text, one path a line",
                       parameter="dataset", value=dataset) from None
    base = Path(images_root) if images_root else file.parent
    images = []
    for number, line in enumerate(text.splitlines(), start=1):
        name = line.strip()
        if "\x00" in name:
            raise BadInput(f"line {number} holds a NUL byte; one image path a line", parameter="dataset", value=dataset)
        if name and not name.startswith("#"):
            images.append(AnnotatedImage(image_id=name, path=str(base / name)))
    if not images:
        raise BadInput("lists no image paths (one a line)", parameter="dataset", value=dataset)
    return images


def is_dataset_input(images: list[str], annotations: str | None) -> bool:
    """Whether ``vizcli roi`` runs over a dataset: annotations given, or one folder / .txt list."""
    if annotations:
        return True
    return len(images) == 1 and (is_folder(images[0]) or images[0].lower().endswith(".txt"))


def load_dataset(
    dataset: str | None,
    annotations: str | None = None,
    annotations_format: str | None = None,
    images_root: str | None = None,
    glob: str | None = None,
    shard: Shard | None = None,
    max_boxes: int = 1_000_000,
) -> tuple[list[AnnotatedImage], list[dict]]:
    """The images of this run (this shard's), each with its boxes, and the annotation problems."""
    shard = shard or Shard()
    read: Annotations | None = read_annotations(annotations, annotations_format, max_boxes) if annotations else None
    if read is not None and read.images is not None:
        root = Path(images_root or dataset or Path(annotations or ".").parent)
        if dataset and not is_folder(dataset):
            raise BadInput(f"{read.format} annotations name their images; give their folder (or images_root=FOLDER), not a file",
                           parameter="dataset", value=dataset)
        images = [AnnotatedImage(image.image_id, str(root / image.path), image.annotations) for image in read.images]
    else:
        if dataset is None:
            raise BadInput("give the images: a folder or a list file (the annotations do not name them)", parameter="dataset")
        images = list_images(dataset, glob, images_root)
        if read is not None:
            images = attach(read, images)
    images = [image for image in images if shard.holds(image.image_id)]
    seen: set[str] = set()
    for image in images:
        if image.image_id in seen:
            raise BadInput(f"image id {image.image_id!r} appears twice; every image must have its own id", parameter="dataset", value=dataset)
        seen.add(image.image_id)
        if len(image.annotations) > max_boxes:
            raise BadInput(f"image {image.image_id!r} has {len(image.annotations):,} boxes, more than max_boxes={max_boxes}")
    return images, list(read.problems) if read is not None else []


def listed_images(images: list[str], boxes: list[str] | None, annotations: str | None, shard: Shard,
                  max_boxes: int) -> tuple[list[AnnotatedImage], list[dict]]:
    """Image files named on the command line, as a dataset (ids = the paths given)."""
    from vizcli.roi.annotations import Annotation
    from vizcli.roi.boxes import parse_box_text

    if not images:
        raise BadInput("give the images: files, a folder, or a text file of paths")
    listed = [AnnotatedImage(image_id=path, path=path) for path in images if shard.holds(path)]
    if boxes:
        parsed = [parse_box_text(text, number) for number, text in enumerate(boxes, start=1)]
        every = [Annotation(box.coords, str(box.number), box.label) for box in parsed]
        return attach(Annotations("boxes", None, every_image=every), listed), []
    if not annotations:
        raise BadInput("no boxes given; use --annotations FILE, --boxes-file FILE or --boxes x1,y1,x2,y2")
    read = read_annotations(annotations, None, max_boxes)
    if read.images is not None:
        raise BadInput(f"{read.format} annotations name their images; give their folder instead of image files")
    return attach(read, listed), read.problems

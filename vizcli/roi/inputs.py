"""What a ``roi`` or ``detect`` run reads: the images, and the boxes given for them (if any).

``ImageInputs`` holds the inputs as given (image paths, box texts, a boxes file, annotations) and
answers the questions both commands ask: is this a dataset run, which boxes go with each single
image, and which images (with which boxes) a dataset run covers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vizcli.common.errors import BadInput
from vizcli.roi.annotations import AnnotatedImage
from vizcli.roi.boxes import DEFAULT_MAX_BOXES, Box


@dataclass(frozen=True)
class ImageInputs:
    """Images (paths, ``-`` for stdin, or one dataset: a folder or a text file of paths) and their boxes."""

    images: tuple[str, ...] = ()
    boxes: tuple[str, ...] = ()  # x1,y1,x2,y2 texts, for every image
    boxes_file: str | None = None
    annotations: str | None = None
    annotations_format: str | None = None
    images_root: str | None = None
    glob: str | None = None
    max_boxes: int = DEFAULT_MAX_BOXES

    @property
    def has_boxes(self) -> bool:
        return bool(self.boxes or self.boxes_file or self.annotations)

    def files(self) -> list[str | None]:
        """Every file read, which no output may overwrite."""
        return [*self.images, self.boxes_file, self.annotations]

    def is_dataset(self, output: str | None) -> bool:
        """A dataset run: annotations, one folder or ``.txt`` list of images, or rows asked for (``-o x.parquet|DIR/``)."""
        from vizcli.datasets.sink import is_table_output
        from vizcli.roi.dataset import is_dataset_input

        return is_dataset_input(list(self.images), self.annotations) or bool(output and is_table_output(output))

    def check_single(self) -> None:
        """``BadInput`` for what only a dataset run reads."""
        from vizcli.roi.boxes import check_max_boxes

        check_max_boxes(self.max_boxes)
        if not self.images:
            raise BadInput("no image given; give IMAGE files (or - for stdin), or a DATASET folder or list with -o out.parquet",
                           parameter="images")
        for name, value in (("glob", self.glob), ("images_root", self.images_root)):
            if value is not None:
                raise BadInput("picks a dataset's images; give a DATASET folder or list and -o out.parquet, or drop it",
                               parameter=name, value=value)

    def boxes_by_image(self) -> dict[str, list[Box]]:
        """Each single image's boxes: the ``boxes`` on every image, or the ``boxes_file``'s."""
        from vizcli.roi.boxes import load_boxes_file, parse_box_text

        if self.boxes and self.boxes_file:
            raise BadInput("give boxes with boxes=[...] or boxes_file=PATH, not both")
        if self.boxes:
            if len(self.boxes) > self.max_boxes:
                raise BadInput(f"boxes given {len(self.boxes):,} times, more than max_boxes={self.max_boxes:,}")
            parsed = [parse_box_text(text, number) for number, text in enumerate(self.boxes, start=1)]
            return {image: parsed for image in self.images}
        if self.boxes_file:
            return load_boxes_file(self.boxes_file, list(self.images), self.max_boxes)
        raise BadInput("no boxes given; use boxes=x1,y1,x2,y2 (one a box) or boxes_file=PATH")

    def dataset_images(self, detecting: bool = False) -> tuple[list[AnnotatedImage], list[dict[str, Any]]]:
        """The images of a dataset run, each with its boxes (none when ``detecting``: the detector finds
        them), and the problems reading the annotations found."""
        from vizcli.datasets.keys import Shard
        from vizcli.roi.annotations import Annotation, Annotations, attach
        from vizcli.roi.boxes import parse_box_text
        from vizcli.roi.dataset import is_dataset_input, list_images, listed_images, load_dataset

        images = list(self.images)
        if self.boxes and (self.annotations or self.boxes_file):
            raise BadInput("give boxes with boxes=[...] or annotations=PATH, not both")
        if self.boxes_file and self.annotations:
            raise BadInput("give boxes with annotations=PATH or boxes_file=PATH, not both")
        annotations = self.annotations or self.boxes_file
        one_dataset = len(images) == 1 and is_dataset_input(images, None)
        if detecting:  # every image of the folder, list or command line
            if one_dataset:
                return list_images(images[0], self.glob, self.images_root), []
            return [AnnotatedImage(image_id=path, path=path) for path in images], []
        if self.boxes and one_dataset:  # a folder or list, the same boxes on every image
            every = [Annotation(box.coords, str(box.number), box.label)
                     for box in (parse_box_text(text, number) for number, text in enumerate(self.boxes, start=1))]
            return attach(Annotations("boxes", None, every_image=every), list_images(images[0], self.glob, self.images_root)), []
        if is_dataset_input(images, annotations) and len(images) <= 1 and not self.boxes:
            return load_dataset(images[0] if images else None, annotations, self.annotations_format, self.images_root,
                                self.glob, Shard(), self.max_boxes)
        return listed_images(images, list(self.boxes), annotations, Shard(), self.max_boxes)

"""Finding an output's recorded inputs again after they moved: one folder, ``root``, is enough.

An output records where its inputs were (absolute paths where vizcli knew them). When a dataset is
copied to another machine or folder, ``find_again(path, root)`` tries the recorded path, then the
recorded path's trailing parts under ``root``, longest first: ``/old/data/imgs/a/b.jpg`` with
``root=/new/imgs`` finds ``/new/imgs/a/b.jpg``.
"""

from __future__ import annotations

from pathlib import Path, PurePath

from vizcli.common.errors import BadInput


def find_again(path: str, root: str | None, what: str) -> str:
    """``path`` if it is there, else the first of its trailing parts found under ``root``; else one ``BadInput``."""
    if Path(path).is_file():
        return path
    if root is not None:
        if not Path(root).is_dir():
            raise BadInput("not a folder; give the folder the inputs moved to" + (" (the folder that holds this file)" if Path(root).is_file() else ""),
                           parameter="root", value=root)
        parts = PurePath(path).parts
        for start in range(1 if PurePath(path).is_absolute() else 0, len(parts)):
            candidate = Path(root, *parts[start:])
            if candidate.is_file():
                return str(candidate)
    hint = f"none of its trailing parts is under root={root!r}" if root else "give the folder it moved to with root=FOLDER"
    raise BadInput(f"{what}: {path} is not there; {hint}", parameter="output")

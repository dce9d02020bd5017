"""What writes every generated block of README.md and docs/: run with ``make docs`` (rewrite) or ``make docs-check``.

Each block in a page is a cog block (https://nedbatchelder.com/code/cog/): an HTML comment holding one Python call,
followed by what that call printed the last time ``make docs`` ran::

    <!-- [[[cog console("vizcli roi --explain-notes", head=12) ]]] -->
    ```console
    $ vizcli roi --explain-notes
    …
    ```
    <!-- [[[end]]] -->

``console`` runs the command for real (``bash -c``, in a scratch folder holding a copy of ``examples/``, with
``COLUMNS=120`` and no colour) and shows ``$ command`` then its stdout and stderr as a terminal would interleave them.
What changes from run to run is masked so that the check compares only what the program decides:

* times: ``14.7 ms`` → ``… ms``, ``2.3 s`` → ``… s`` (throughputs such as ``512 texts/s`` likewise);
* the scratch folder disappears (``/tmp/vizcli-docs-x1y2/feats.parquet`` → ``feats.parquet``), the checkout becomes
  ``.``, the home folder ``~``, and other temporary names ``/tmp/…``;
* lines left out on purpose (``head=``, ``tail=``, ``keep=``) are shown as one ``…`` line;
* a table column of times (``masked_columns=["fit s"]``) shows ``…`` in each cell.

The costliest blocks (``approx`` trains networks; a detector or all of ResNet18 traced) pass ``cache=[folders]``: the
block is kept in ``docs/_cache/`` under a hash of the command and of every file in those folders, and rerun when any
of them changes (this keeps ``make docs-check`` within CI's budget on a 2-core machine).

``python docs/_cog.py`` rewrites the pages (``make docs``); ``python docs/_cog.py --check`` fails (with a diff)
when any block differs from what the program prints now (``make docs-check``). Other helpers write tables from the
source itself (``cli_reference``, ``schema_ids``, ``rooms``, ``api_table``) or from real outputs (``columns``,
``metadata_keys``), and stop ``make docs`` when a column or key appears that the page does not explain.
Nothing here reads /work/shared or the network.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
COLUMNS = 120
MARK = "…"

_scratch: dict[str, Path] = {}


def pages() -> list[Path]:
    """Every file cog rewrites: README.md and the Markdown pages of docs/."""
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def _out(text: str) -> None:
    import cog  # the module cog installs while it runs a block

    cog.out(text)


def _page() -> str:
    import cog

    return str(getattr(cog, "inFile", "") or "page")


def scratch() -> Path:
    """This page's scratch folder (one per page, so a page's commands can read what its earlier commands wrote)."""
    page = _page()
    if page not in _scratch:
        folder = Path(tempfile.mkdtemp(prefix="vizcli-docs-"))
        shutil.copytree(ROOT / "examples", folder / "examples")
        _scratch[page] = folder
        atexit.register(shutil.rmtree, folder, True)
    return _scratch[page]


def environment(folder: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        COLUMNS=str(COLUMNS), LINES="50", TERM="dumb", NO_COLOR="1", PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1",
        HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", VIZCLI_CACHE_DIR=str(folder / ".cache"),
        PATH=os.pathsep.join([str(ROOT / ".venv" / "bin"), str(Path(sys.executable).parent), env.get("PATH", "")]),
    )
    for name in ("FORCE_COLOR", "VIZCLI_DEBUG", "RAY_ADDRESS"):
        env.pop(name, None)
    return env


_TIME = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?= ?(?:ms|s|µs|us|min)\b)")
_RATE = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?= ?[a-z]+/s\b)")
_TEMP = re.compile(r"/tmp/[A-Za-z0-9_.-]+")


def mask(text: str, folder: Path | None = None, times: bool = True) -> str:
    """``text`` with run-dependent parts replaced (see the module docstring)."""
    if folder is not None:
        for spelling in {str(folder), os.path.realpath(folder)}:
            text = text.replace(spelling + "/", "").replace(spelling, ".")
    text = text.replace(str(ROOT) + "/", "").replace(str(ROOT), ".")
    home = os.path.expanduser("~")
    if home not in ("/", ""):
        text = text.replace(home + "/", "~/")
    text = _TEMP.sub("/tmp/" + MARK, text)
    if times:
        text = _RATE.sub(MARK, _TIME.sub(MARK, text))
    return text


def mask_columns(lines: list[str], names: Sequence[str]) -> list[str]:
    """``lines`` with the cells of the table columns headed ``names`` (run-dependent, such as a fit's seconds) shown as ``…``.

    Works on rich's box tables: a column's span is read from the ``┏━┳━┓`` border above its header."""
    shown = list(lines)
    for top, line in enumerate(lines):
        if not line.startswith("┏"):
            continue
        edges = [index for index, char in enumerate(line) if char in "┏┳┓"]
        spans = list(zip(edges, edges[1:]))
        header = [line for line in lines[top + 1:] if line.startswith("┃")]
        masked = [span for span in spans if any(" ".join(h[span[0] + 1:span[1]].split()) in names for h in header[:1])]
        for number in range(top + 1, len(lines)):
            row = shown[number]
            if row.startswith("└"):
                break
            if not row.startswith("│"):
                continue
            for start, end in masked:
                if row[start + 1:end].strip():
                    shown[number] = row = row[:start + 1] + MARK.rjust(end - start - 2) + " " + row[end:]
    return shown


def _trim(lines: list[str], head: int | None, tail: int | None, keep: Sequence[str] | None, start: str | None = None) -> list[str]:
    """The lines shown: from the first matching ``start`` on (when given), the first ``head``, the last ``tail``, and
    those matching a ``keep`` pattern; a gap is one ``…``."""
    if start is not None:
        first = next(number for number, line in enumerate(lines) if re.search(start, line))
        lines = lines[first:]
        if head is None and tail is None and keep is None:
            return ([MARK] if first else []) + lines
        return ([MARK] if first else []) + _trim(lines, head, tail, keep)
    if head is None and tail is None and keep is None:
        return lines
    wanted = set()
    if head:
        wanted.update(range(min(head, len(lines))))
    if tail:
        wanted.update(range(max(0, len(lines) - tail), len(lines)))
    for pattern in keep or ():
        wanted.update(number for number, line in enumerate(lines) if re.search(pattern, line))
    shown: list[str] = []
    previous = -1
    for number in sorted(wanted):
        if number != previous + 1:
            shown.append(MARK)
        shown.append(lines[number])
        previous = number
    if previous != len(lines) - 1:
        shown.append(MARK)
    return shown


def run(command: str, *, stdin: str | None = None, status: Iterable[int] = (0,), timeout: float = 300) -> tuple[str, int]:
    """``command``'s stdout and stderr, interleaved, and its exit status; raises when the status is not one of ``status``."""
    folder = scratch()
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=folder, env=environment(folder), input=stdin,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    if done.returncode not in tuple(status):
        raise RuntimeError(f"{command!r} exited {done.returncode} in {_page()} (expected {tuple(status)}):\n{done.stdout[-3000:]}")
    return done.stdout, done.returncode


def console(command: str, *, head: int | None = None, tail: int | None = None, keep: Sequence[str] | None = None,
            stdin: str | None = None, status: Iterable[int] = (0,), times: bool = True, show: str | None = None,
            cache: Sequence[str] = (), masked_columns: Sequence[str] = (), start: str | None = None) -> None:
    """Write a ```` ```console ```` block: ``$ command`` (or ``show``) and its output, trimmed and masked.

    ``status``: the exit statuses expected (any other stops ``make docs`` and shows the output); a status other
    than 0 is shown after the output as ``[exit N]``. ``stdin``: text piped in.
    ``start``: a pattern; lines before the first that matches are left out (``…``).
    ``masked_columns``: headers of table columns whose cells change from run to run (``["fit s"]``).
    ``cache``: for commands that take minutes (training networks), folders of the checkout whose sources decide the
    output; the block is then kept in ``docs/_cache/`` under a hash of the command and of every file in those folders
    (plus ``vizcli/common/`` and ``pyproject.toml``), and rerun only when one of them changes.
    """
    key = _cache_key(command, stdin, cache) if cache else None
    stored = DOCS / "_cache" / f"{key}.txt" if key else None
    if stored is not None and stored.is_file():
        _used_cache.add(stored.name)
        _out(stored.read_text(encoding="utf-8"))
        return
    folder = scratch()
    output, code = run(command, stdin=stdin, status=status)
    lines = mask(output, folder, times).rstrip("\n").split("\n") if output.strip() else []
    lines = [line.rstrip() for line in _trim(mask_columns(lines, masked_columns), head, tail, keep, start)]
    body = [f"$ {show or command}", *lines] + ([f"[exit {code}]"] if code else [])
    block = "```console\n" + "\n".join(body) + "\n```\n"
    if stored is not None and not _checking:  # `make docs-check` compares only; it leaves no file behind
        stored.parent.mkdir(exist_ok=True)
        stored.write_text(block, encoding="utf-8")
        _used_cache.add(stored.name)
    _out(block)


_used_cache: set[str] = set()
_checking = False


def _cache_key(command: str, stdin: str | None, folders: Sequence[str]) -> str:
    import hashlib

    digest = hashlib.sha256(f"{command}\0{stdin}\0{COLUMNS}\0".encode())
    paths = [ROOT / "pyproject.toml"]
    for folder in ["vizcli/common", *folders]:
        paths += sorted(path for path in (ROOT / folder).rglob("*") if path.is_file() and "__pycache__" not in path.parts)
    for path in paths:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:20]


def prepare(command: str, *, stdin: str | None = None) -> None:
    """Run ``command`` in this page's scratch folder without showing it (to make an input a later block reads)."""
    run(command, stdin=stdin)


_PYCON_DRIVER = r"""
import ast, sys
source = sys.stdin.read()
scope = {"__name__": "__main__"}
for node in ast.parse(source).body:
    lines = ast.get_source_segment(source, node).split("\n")
    print(">>> " + lines[0])
    for line in lines[1:]:
        print("... " + line)
    if isinstance(node, ast.Expr):
        value = eval(compile(ast.Expression(node.value), "<docs>", "eval"), scope)
        if value is not None:
            print(repr(value))
    else:
        exec(compile(ast.Module([node], []), "<docs>", "exec"), scope)
    sys.stdout.flush()
"""


def pycon(code: str, *, times: bool = True) -> None:
    """Write a ```` ```pycon ```` block: each statement of ``code`` as typed at ``>>>``, and what it shows, run for real
    in a fresh interpreter in this page's scratch folder (stderr, such as progress lines, is left out)."""
    folder = scratch()
    done = subprocess.run([sys.executable, "-c", _PYCON_DRIVER], cwd=folder, env=environment(folder), input=code.strip() + "\n",
                          capture_output=True, text=True, timeout=300)
    if done.returncode:
        raise RuntimeError(f"{_page()}: the Python example failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    _out("```pycon\n" + mask(done.stdout, folder, times).rstrip("\n") + "\n```\n")


def api_table() -> None:
    """The public names of ``vizcli`` (its lazy ``_LAZY`` map), each with its module and the first sentence of its
    docstring, read from the source (nothing heavy is imported)."""
    import ast

    import vizcli

    lines = ["| name | module | what it does |", "|---|---|---|"]
    for name, module in vizcli._LAZY.items():
        path = ROOT / (module.replace(".", "/") + ".py")
        tree = ast.parse(path.read_text())
        found = next((node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name), None)
        if found is None:
            raise RuntimeError(f"{_page()}: vizcli.{name} is not defined in {module}")
        doc = (ast.get_docstring(found) or "").strip().split("\n\n")[0].replace("``", "`")
        kind = "class" if isinstance(found, ast.ClassDef) else "function"
        lines.append(f"| `vizcli.{name}` ({kind}) | `{module}` | {_cell(doc)} |")
    _out("\n".join(lines) + "\n")


def _docstring(path: Path) -> str:
    import ast

    return (ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or "").strip()


def rooms() -> None:
    """Each package of ``vizcli/`` with each module and the first sentence of its docstring, read from the source."""
    lines = ["| room | module | what it holds |", "|---|---|---|"]
    top = [path for path in sorted((ROOT / "vizcli").glob("*.py")) if path.name != "__main__.py"]
    packages = [path for path in sorted((ROOT / "vizcli").iterdir()) if path.is_dir() and (any(path.glob("*.py")))]
    for path in top:
        lines.append(f"| `vizcli` | `{path.name}` | {_cell(_first_sentence(_docstring(path)))} |")
    for package in packages:
        for path in sorted(package.glob("*.py")):
            if path.name == "__init__.py" and not _docstring(path):
                continue
            lines.append(f"| `{package.name}/` | `{path.name}` | {_cell(_first_sentence(_docstring(path)))} |")
    _out("\n".join(lines) + "\n")


def _first_sentence(text: str) -> str:
    paragraph = text.split("\n\n")[0].replace("``", "`")
    match = re.match(r"(.+?\.)(\s|$)", " ".join(paragraph.split()))
    return match.group(1) if match else paragraph


def docstring(module: str, *, paragraphs: int | None = None, fenced: bool = False) -> None:
    """The docstring of ``module`` (``vizcli.datasets.run``), quoted as it stands in the source."""
    text = _docstring(ROOT / (module.replace(".", "/") + ".py"))
    parts = text.split("\n\n")
    if paragraphs is not None:
        parts = parts[:paragraphs]
    body = "\n\n".join(parts)
    if fenced:
        _out("```text\n" + body + "\n```\n")
    else:
        _out(body.replace("``", "`").replace("::\n", ":\n") + "\n")


# ---------------------------------------------------------------- the CLI reference


def _annotation(param: object) -> object:
    descriptor = getattr(param, "type_descriptor", None)
    return getattr(descriptor, "annotation", None)


def _is_flag(param: object) -> bool:
    return bool(getattr(param, "is_flag", False))


def _default_text(param: object) -> str:
    from enum import Enum

    default = getattr(param, "default", None)
    secondary = list(getattr(param, "secondary_opts", []) or [])
    if _is_flag(param):
        if secondary:
            return f"`{param.opts[0] if default else secondary[0]}`"  # type: ignore[attr-defined]
        return "off" if not default else "on"
    if default is None or default == () or default == []:
        return "—"
    if isinstance(default, Enum):
        default = default.value
    if isinstance(default, (list, tuple)):
        return ", ".join(f"`{value.value if isinstance(value, Enum) else value}`" for value in default)
    return f"`{default}`" if str(default) != "" else '`""`'


def _type_text(param: object) -> str:
    import typing
    from enum import Enum

    if _is_flag(param):
        return "flag"
    annotation = _annotation(param)
    while typing.get_origin(annotation) in (list, tuple, typing.Union) or type(annotation).__name__ == "UnionType":
        inner = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        annotation = inner[0] if inner else str
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " \\| ".join(f"`{member.value}`" for member in annotation)
    names = {int: "integer", float: "number", str: "text", bool: "boolean"}
    text = names.get(annotation, getattr(annotation, "__name__", str(annotation))) if annotation is not None else "text"
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if low is not None or high is not None:
        text += f" ({'' if low is None else f'{low} ≤ '}x{'' if high is None else f' ≤ {high}'})"
    return text


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _is_argument(param: object) -> bool:
    return "Argument" in type(param).__name__


def cli_reference() -> None:
    """Every command of ``vizcli.cli.app``: its summary, arguments, and each option with its default, grouped by panel."""
    import typer

    from vizcli.cli import app

    group = typer.main.get_command(app)
    commands = getattr(group, "commands", {})
    options = [param for param in group.params if not _is_argument(param) and not param.hidden and param.name != "help"]
    lines = [(group.help or "").split("\n\n")[0].replace("\n", " "), "",
             "Options before the command: " + "; ".join(f"`{' / '.join(param.opts)}`: {_cell(param.help or '').rstrip('.')}" for param in options) + ".", "",
             "| command | what it does |", "|---|---|"]
    lines += [f"| [`vizcli {name}`](#vizcli-{name}) | {_cell((command.help or '').split(chr(10) * 2)[0])} |"
              for name, command in commands.items() if not command.hidden]
    lines.append("")
    for name, command in commands.items():
        if command.hidden:
            continue
        arguments = [param for param in command.params if _is_argument(param)]
        usage = " ".join(("[" if not param.required else "") + param.name.upper() + ("..." if param.nargs == -1 else "")
                         + ("]" if not param.required else "") for param in arguments)
        lines += [f"## vizcli {name}", "", "```text", f"vizcli {name} [OPTIONS] {usage}".rstrip(), "```", "",
                  " ".join((command.help or "").strip().split("\n\n")[0].split()), ""]
        for argument in arguments:
            repeat = " (one or more)" if argument.nargs == -1 else ""
            lines.append(f"- `{argument.name.upper()}`{repeat}: {_cell(argument.help or '')}")
        if arguments:
            lines.append("")
        panels: dict[str, list[object]] = {}
        for param in command.params:
            if not _is_argument(param) and not param.hidden and param.name != "help":
                panels.setdefault(param.rich_help_panel or "Options", []).append(param)
        for panel, members in panels.items():
            lines += [f"**{panel}**", "", "| option | type | default | what it does |", "|---|---|---|---|"]
            for option in members:
                flags = " / ".join(f"`{flag}`" for flag in [*option.opts, *option.secondary_opts])  # type: ignore[attr-defined]
                repeat = " (repeatable)" if getattr(option, "multiple", False) else ""
                required = " (required)" if getattr(option, "required", False) else ""
                lines.append(f"| {flags} | {_type_text(option)}{repeat}{required} | {_default_text(option)} | "
                             f"{_cell(getattr(option, 'help', '') or '')} |")
            lines.append("")
    _out("\n".join(lines).rstrip("\n") + "\n")


# ---------------------------------------------------------------- schemas read from real outputs


def _metadata_of(path: Path) -> dict[str, object]:
    import json

    if path.is_dir():
        document: dict[str, object] = json.loads((path / "manifest.json").read_text())
        return document
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return dict(json.loads(pq.read_schema(path).metadata[b"vizcli"]))
    if path.suffix == ".npz":
        import numpy as np

        with np.load(path, allow_pickle=False) as arrays:
            return dict(json.loads(str(arrays["metadata"])))
    if path.suffix == ".json":
        return dict(json.loads(path.read_text()))
    raise ValueError(f"no metadata reader for {path}")


def _check_documented(what: str, found: Sequence[str], meanings: dict[str, str], optional: Iterable[str]) -> None:
    """Stop ``make docs`` when the page and the program disagree: a name found but not explained, or explained but gone."""
    missing = [name for name in found if name not in meanings]
    gone = [name for name in meanings if name not in found and name not in set(optional)]
    if missing or gone:
        raise RuntimeError(f"{_page()}: {what}: not documented: {missing}; documented but not written: {gone}")


def columns(paths: str | Sequence[str], meanings: dict[str, str], optional: Iterable[str] = ()) -> None:
    """A table of the columns of the Parquet files ``paths`` (in this page's scratch folder; several: their union, in
    order): name, Arrow type, and the meaning the page gives; ``make docs`` stops if a column has no meaning or a
    meaning has no column."""
    import pyarrow.parquet as pq

    fields: dict[str, object] = {}
    for path in [paths] if isinstance(paths, str) else paths:
        for field in pq.read_schema(scratch() / path):
            fields.setdefault(field.name, field.type)
    _check_documented(f"columns of {paths}", list(fields), meanings, optional)
    lines = ["| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{name}` | `{_cell(str(kind))}` | {meanings[name]} |" for name, kind in fields.items()]
    _out("\n".join(lines) + "\n")


def metadata_keys(path: str, meanings: dict[str, str], optional: Iterable[str] = (), under: str | None = None) -> None:
    """A table of the metadata keys ``path`` records (Parquet key ``vizcli``, an npz's ``metadata``, a folder's
    ``manifest.json``, or a ``.json`` sidecar; ``under`` picks one nested object), checked as ``columns`` is."""
    metadata = _metadata_of(scratch() / path)
    if under is not None:
        metadata = dict(metadata[under])  # type: ignore[call-overload]
    names = list(metadata)
    _check_documented(f"metadata of {path}" + (f" ({under})" if under else ""), names, meanings, optional)
    lines = ["| key | JSON type | meaning |", "|---|---|---|"]
    for name in [*names, *[name for name in meanings if name not in names]]:
        value = metadata.get(name)
        json_types = {"dict": "object", "list": "array", "str": "string", "NoneType": "null", "bool": "boolean",
                      "int": "integer", "float": "number"}
        kind = "(absent here)" if name not in metadata else json_types.get(type(value).__name__, type(value).__name__)
        lines.append(f"| `{name}` | {kind} | {meanings[name]} |")
    _out("\n".join(lines) + "\n")


def settings_table(kind: str) -> None:
    """The worker settings an output kind records (``vizcli.roi.kind`` / ``vizcli.embed.kind``), with their JSON types."""
    import importlib

    output_kind = getattr(importlib.import_module(f"vizcli.{kind}.kind"), f"{kind.upper()}_KIND")
    names = {int: "integer", float: "number", str: "string", bool: "boolean", list: "array", dict: "object", type(None): "null"}
    lines = [f"Settings version {output_kind.settings_version}:", "", "| setting | JSON types |", "|---|---|"]
    for name, spec in output_kind.settings.items():
        lines.append(f"| `{name}` | {' or '.join(names.get(t, t.__name__) for t in spec.types)} |")
    _out("\n".join(lines) + "\n")


def kinds_table() -> None:
    """Each output kind: the command, schema ids, key, merge keys, what one row is and the export layouts."""
    from vizcli.embed.kind import EMBED_KIND
    from vizcli.roi.kind import ROI_KIND

    lines = ["| kind | dataset schema | single-input schemas | key | merge keys | a row is | export layouts |",
             "|---|---|---|---|---|---|---|"]
    for kind in (ROI_KIND, EMBED_KIND):
        lines.append(f"| `{kind.command}` | `{kind.schema}` | {', '.join(f'`{s}`' for s in kind.single_schemas)} | `{kind.key}` | "
                     f"{', '.join(f'`{k}`' for k in kind.merge_keys)} | {kind.describe} | {', '.join(f'`{k}`' for k in kind.export_layouts)} |")
    _out("\n".join(lines) + "\n")


def schema_ids() -> None:
    """Every schema id vizcli writes: each ``NAME_SCHEMA = "vizcli.…/N"`` assignment in the source, and what writes it."""
    assignment = re.compile(r'^([A-Z_]*SCHEMA) = "(vizcli\.[a-z_.]+/\d+)"', re.MULTILINE)
    found = sorted({(value, f"{path.relative_to(ROOT).with_suffix('')}".replace("/", "."), name)
                    for path in (ROOT / "vizcli").rglob("*.py") for name, value in assignment.findall(path.read_text())})
    unknown = sorted({value for value, _, _ in found if value not in SCHEMA_WRITERS})
    gone = sorted(set(SCHEMA_WRITERS) - {value for value, _, _ in found})
    if unknown or gone:
        raise RuntimeError(f"{_page()}: schema ids to describe in docs/_cog.py SCHEMA_WRITERS: {unknown}; no longer written: {gone}")
    lines = ["| schema id | written by | constant |", "|---|---|---|"]
    lines += [f"| `{value}` | {SCHEMA_WRITERS[value]} | `{module}.{name}` |" for value, module, name in found]
    _out("\n".join(lines) + "\n")


SCHEMA_WRITERS = {
    "vizcli.shapes/1": "`shapes -f json` (and `-o x.json`)",
    "vizcli.roi/1": "`roi` on one image: `-o x.npz/.safetensors/.pt/.npy`",
    "vizcli.roi/2": "`roi` and `detect` dataset runs: Parquet rows or a shard folder",
    "vizcli.roi.detections/1": "`detect` on one image: `-o x.npz/…`",
    "vizcli.embed/1": "`embed` without a dataset: JSON lines/JSON/CSV rows, or arrays (`.npy`, `.npz`, …)",
    "vizcli.embed/2": "`embed` corpus runs: Parquet rows or a shard folder",
    "vizcli.embed.similarity/1": "`embed --similarity -f json`",
    "vizcli.approx/1": "`approx -f json`",
    "vizcli.approx.claims/1": "`approx --claims -f json`",
    "vizcli.info/1": "`info -f json`",
    "vizcli.shapes.models/1": "`shapes --model A --model B -f json`",
    "vizcli.shapes.checkpoints/1": "`shapes --weights A --weights B -f json`",
    "vizcli.shapes.sweep/1": "`shapes --model minilm --seq-len 16,64,256 -f json`",
    "vizcli.search.index/1": "the record beside a usearch index (`search --build-index`)",
}


# ---------------------------------------------------------------- quoting files


def quote_section(path: str, heading: str, *, lines: int | None = None) -> None:
    """The body of section ``heading`` of ``path`` (relative to the checkout), quoted as it stands there now."""
    text = (ROOT / path).read_text(encoding="utf-8").split("\n")
    start = next(number for number, line in enumerate(text) if line.strip("# ").strip() == heading)
    end = next((number for number in range(start + 1, len(text)) if text[number].startswith("#")), len(text))
    body = [line for line in text[start + 1:end]]
    while body and not body[0].strip():
        body.pop(0)
    while body and not body[-1].strip():
        body.pop()
    if lines is not None and len(body) > lines:
        body = [*body[:lines], MARK]
    _out("\n".join(body) + "\n")


def quote_file(path: str, *, fence: str = "text") -> None:
    """The whole of ``path`` (relative to the checkout), in a fenced block, as it stands there now."""
    text = (ROOT / path).read_text(encoding="utf-8").rstrip("\n")
    _out(f"```{fence}\n{text}\n```\n")


def quote_lines(path: str, pattern: str) -> None:
    """The lines of ``path`` that match ``pattern``, quoted as they stand there now."""
    text = (ROOT / path).read_text(encoding="utf-8").split("\n")
    _out("\n".join(line for line in text if re.search(pattern, line)) + "\n")


# ---------------------------------------------------------------- make docs / make docs-check


def main(argv: list[str]) -> int:
    """``[--check] [FILE…]``: rewrite (or check) the given pages, else every page, two pages at a time."""
    check = "--check" in argv
    files = [arg for arg in argv if not arg.startswith("-")]
    if not files:
        return _all_pages(check)
    from cogapp import Cog

    arguments = ["cog", "-I", str(DOCS), "-p", "from _cog import *", "-U", "--verbosity", "1"]
    arguments += ["--check", "--diff", "--check-fail-msg", "run `make docs` to regenerate the blocks"] if check else ["-r"]
    sys.dont_write_bytecode = True
    global _checking
    _checking = check
    sys.modules.setdefault("_cog", sys.modules[__name__])  # the blocks' prologue imports this very module, not a copy
    status = int(Cog().main(arguments + files))
    if os.environ.get("VIZCLI_DOCS_CACHE_USED"):
        with open(os.environ["VIZCLI_DOCS_CACHE_USED"], "a", encoding="utf-8") as used:
            used.writelines(name + "\n" for name in sorted(_used_cache))
    return status


def _all_pages(check: bool) -> int:
    """Every page, each in its own interpreter, two at a time (the machine CI runs on has 2 cores; most of a command's
    time is starting Python and importing torch). A full rewrite then drops cached blocks no page uses any more."""
    from concurrent.futures import ThreadPoolExecutor

    with tempfile.NamedTemporaryFile("r", suffix=".txt") as used:
        env = {**os.environ, "VIZCLI_DOCS_CACHE_USED": used.name}

        def one(page: Path) -> tuple[int, str]:
            done = subprocess.run([sys.executable, __file__, *(["--check"] if check else []), str(page.relative_to(ROOT))],
                                  cwd=ROOT, env=env, capture_output=True, text=True)
            return done.returncode, done.stdout + done.stderr

        # the slowest pages first, so the two workers finish together
        ordered = sorted(pages(), key=lambda page: -page.read_text(encoding="utf-8").count("[[[cog"))
        with ThreadPoolExecutor(max_workers=int(os.environ.get("VIZCLI_DOCS_JOBS", "2"))) as pool:
            results = list(pool.map(one, ordered))
        for page, (code, output) in zip(ordered, results):
            sys.stdout.write(output)
            if code:
                print(f"{page.relative_to(ROOT)}: {'differs from what the program prints now' if check else 'failed'}")
        status = max(code for code, _ in results)
        if not check and status == 0:
            kept = set(used.read().split())
            for stale in (DOCS / "_cache").glob("*.txt"):
                if stale.name not in kept:
                    stale.unlink()
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""A reproducible corpus of real English sentences: the docstrings of the standard library."""

from __future__ import annotations

import importlib
import inspect
import re
import sys

MODULES = (
    "argparse", "asyncio", "base64", "bisect", "calendar", "collections", "colorsys", "contextlib", "copy",
    "csv", "dataclasses", "datetime", "decimal", "difflib", "email", "enum", "fractions", "ftplib", "functools",
    "getopt", "gettext", "glob", "gzip", "hashlib", "heapq", "hmac", "html", "http.client", "imaplib",
    "inspect", "io", "ipaddress", "itertools", "json", "locale", "logging", "lzma", "mailbox", "mimetypes",
    "multiprocessing", "netrc", "numbers", "operator", "optparse", "os", "pathlib", "pickle", "pkgutil",
    "platform", "plistlib", "poplib", "pprint", "queue", "quopri", "random", "re", "sched", "secrets",
    "selectors", "shelve", "shlex", "shutil", "signal", "smtplib", "socket", "sqlite3", "ssl", "statistics",
    "string", "struct", "subprocess", "tarfile", "tempfile", "textwrap", "threading", "timeit", "tokenize",
    "trace", "traceback", "types", "typing", "unittest", "urllib.parse", "urllib.request", "uuid", "warnings",
    "wave", "weakref", "xml.dom.minidom", "zipfile", "zoneinfo",
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def _docstrings():
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        yield inspect.getdoc(module) or ""
        for attribute in sorted(vars(module)):
            if attribute.startswith("_"):
                continue
            value = getattr(module, attribute)
            if inspect.isfunction(value) or inspect.isclass(value):
                yield inspect.getdoc(value) or ""


def sentences(count: int) -> list[str]:
    """The first ``count`` distinct docstring sentences of 30–300 characters (repeats if short)."""
    seen: dict[str, None] = {}
    for doc in _docstrings():
        text = " ".join(doc.split())
        for sentence in _SENTENCE_END.split(text):
            if 30 <= len(sentence) <= 300 and not sentence.startswith((">>>", "...")):
                seen.setdefault(sentence, None)
    unique = list(seen)
    if not unique:
        raise RuntimeError("no sentences found in the standard library")
    return [unique[i % len(unique)] for i in range(count)]


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    print("\n".join(sentences(count)))

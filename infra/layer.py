"""What the functions' zip holds and what their Lambda layer holds (issue 16, a small package).

Chalice's ``automatic_layer`` (``.chalice/config.json``) builds two zips: ``deployment.zip``
(``app.py`` and Chalice's runtime) and ``layer-deployment.zip`` (``python/lib/python3.X/
site-packages/``: the requirements and the ``vendor/`` directory). ``split`` then settles what
goes where:

- ``functions/`` (the app's own code, reached through the ``vendor/functions`` symlink) moves
  from the layer to the function zip: the code that changes with every release stays in the
  function, the dependencies that change with ``requirements.txt`` stay in the layer;
- **not shipped at all**: boto3 and what it depends on, which the Lambda Python runtime already
  provides (``/var/runtime``; shipping botocore again is 17 MB of zip for a second copy of what
  is there), and Pillow, which fpdf2 imports only to place images (the invoices have none).
  fontTools stays: fpdf2 imports it at module level even for the core fonts.
"""

from __future__ import annotations

import re
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

#: where Lambda finds a layer's Python packages (``/opt/python/lib/python3.X/site-packages``)
SITE_PACKAGES = f"python/lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages/"
#: the app's own code: in the function zip, not the layer
APP_PACKAGE = "functions"
#: provided by the Lambda Python runtime (boto3 and its dependencies)
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
#: not needed by anything the functions run (fpdf2 imports Pillow for images only)
NOT_NEEDED = ("PIL", "pillow")
#: distribution names whose import name differs (``python_dateutil-2.9.dist-info``)
_DISTRIBUTIONS = {"python_dateutil": "dateutil", "pillow": "PIL"}
#: Lambda's limit on a function's zip (our own) and on function + layers unpacked (AWS's)
MAX_FUNCTION_ZIP_BYTES = 10_000_000
MAX_UNPACKED_BYTES = 250 * 1024 * 1024


@dataclass
class Split:
    moved: int = 0
    left_out: set[str] = field(default_factory=set)


def top_level(entry: str) -> str:
    """The import name an entry of site-packages belongs to: ``botocore``, ``six`` for ``six.py``,
    ``dateutil`` for ``python_dateutil-2.9.0.post0.dist-info``."""
    name = entry.split("/", 1)[0]
    name = re.sub(r"\.py$", "", name)
    name = re.sub(r"-[^-]+\.(dist-info|data)$", "", name)
    name = re.sub(r"\.libs$", "", name)
    return _DISTRIBUTIONS.get(name.lower(), name)


def left_out(entry: str) -> bool:
    return top_level(entry) in {*RUNTIME_PROVIDED, *NOT_NEEDED}


def split(function_zip: Path, layer_zip: Path) -> Split:
    """Move ``functions/`` from the layer to the function zip and drop what is not shipped."""
    result = Split()
    rebuilt = layer_zip.with_suffix(".tmp")
    with (
        zipfile.ZipFile(layer_zip) as layer,
        zipfile.ZipFile(rebuilt, "w", zipfile.ZIP_DEFLATED) as kept,
        zipfile.ZipFile(function_zip, "a", zipfile.ZIP_DEFLATED) as function,
    ):
        for info in layer.infolist():
            entry = info.filename.removeprefix(SITE_PACKAGES)
            data = layer.read(info)
            if entry == info.filename:  # outside site-packages: kept as it is
                kept.writestr(info, data, compress_type=info.compress_type)
            elif top_level(entry) == APP_PACKAGE:
                info.filename = entry
                function.writestr(info, data, compress_type=info.compress_type)
                result.moved += 1
            elif left_out(entry):
                result.left_out.add(top_level(entry))
            else:
                kept.writestr(info, data, compress_type=info.compress_type)
    rebuilt.replace(layer_zip)
    return result


def unpacked_bytes(*zips: Path) -> int:
    total = 0
    for path in zips:
        with zipfile.ZipFile(path) as archive:
            total += sum(info.file_size for info in archive.infolist())
    return total


def link_runtime(into: Path) -> Path:
    """A stand-in for Lambda's ``/var/runtime``: boto3 and its dependencies (``RUNTIME_PROVIDED``),
    linked from the interpreter running this (for the unpack-and-import test and the cold-import
    benchmark)."""
    from importlib.util import find_spec

    into.mkdir(parents=True)
    for name in RUNTIME_PROVIDED:
        spec = find_spec(name)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"{name} is not installed here: it stands in for Lambda's runtime")
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (into / source.name).symlink_to(source)
    return into


def unpack(function_zip: Path, layer_zip: Path, into: Path) -> tuple[Path, Path, Path]:
    """The package as Lambda lays it out: ``task`` (``/var/task``), the layer's site-packages
    (under ``/opt``) and ``runtime`` (``/var/runtime``), in the order of Lambda's sys.path."""
    task, opt = into / "task", into / "opt"
    with zipfile.ZipFile(function_zip) as archive:
        archive.extractall(task)
    with zipfile.ZipFile(layer_zip) as archive:
        archive.extractall(opt)
    return task, opt / SITE_PACKAGES, link_runtime(into / "runtime")

"""What goes into the function zip and what into the layer (issue 16, ``infra/layer.py``), on
small zips built here: the packaged ones are tested in tests/integration/test_package.py."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from infra.layer import SITE_PACKAGES, left_out, split, top_level


@pytest.mark.parametrize(
    ("entry", "name"),
    [
        ("botocore/client.py", "botocore"),
        ("botocore-1.44.18.dist-info/METADATA", "botocore"),
        ("six.py", "six"),
        ("six-1.17.0.dist-info/RECORD", "six"),
        ("python_dateutil-2.9.0.post0.dist-info/METADATA", "dateutil"),
        ("pillow-13.0.0.dist-info/METADATA", "PIL"),
        ("pillow.libs/libjpeg.so", "PIL"),
        ("jmespath-1.1.0.data/scripts/jp.py", "jmespath"),
        ("fontTools/ttLib/__init__.py", "fontTools"),
        ("typing_extensions.py", "typing_extensions"),
    ],
)
def test_an_entry_belongs_to_its_import_name(entry: str, name: str) -> None:
    assert top_level(entry) == name


def test_what_the_runtime_has_and_pillow_are_left_out_and_nothing_else() -> None:
    assert left_out("botocore/client.py") and left_out("boto3/session.py")
    assert left_out("urllib3/poolmanager.py") and left_out("PIL/Image.py")
    assert not left_out("pynamodb/models.py")
    assert not left_out("fontTools/ttLib/__init__.py")  # fpdf2 imports it at module level
    assert not left_out("pydantic_core/__init__.py")


def _zip(path: Path, names: list[str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            archive.writestr(name, f"# {name}\n")
    return path


def test_split_moves_the_app_to_the_function_zip_and_drops_the_runtimes_packages(
    tmp_path: Path,
) -> None:
    function = _zip(tmp_path / "deployment.zip", ["app.py", "chalice/app.py"])
    layer = _zip(
        tmp_path / "layer.zip",
        [
            f"{SITE_PACKAGES}functions/__init__.py",
            f"{SITE_PACKAGES}functions/core/api.py",
            f"{SITE_PACKAGES}pynamodb/models.py",
            f"{SITE_PACKAGES}botocore/client.py",
            f"{SITE_PACKAGES}six.py",
            f"{SITE_PACKAGES}PIL/Image.py",
        ],
    )
    result = split(function, layer)
    assert result.moved == 2
    assert result.left_out == {"botocore", "six", "PIL"}
    with zipfile.ZipFile(function) as archive:
        assert sorted(archive.namelist()) == [
            "app.py",
            "chalice/app.py",
            "functions/__init__.py",
            "functions/core/api.py",
        ]
        assert archive.read("functions/core/api.py") == b"# " + (
            f"{SITE_PACKAGES}functions/core/api.py\n".encode()
        )
    with zipfile.ZipFile(layer) as archive:
        assert archive.namelist() == [f"{SITE_PACKAGES}pynamodb/models.py"]

"""The package as an index shows it: its licence file matches what pyproject.toml declares."""

import tomllib
from importlib.metadata import metadata
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_the_licence_is_the_mit_licence_the_metadata_declares() -> None:
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")
    found = metadata("tf-release")
    assert found["License-Expression"] == "MIT"
    assert found.get_all("License-File") == ["LICENSE"]
    assert "Environment :: Console" in found.get_all("Classifier")


def test_the_package_says_it_is_typed_and_exports_the_api_it_documents() -> None:
    import tf_release
    from tf_release.faces import api

    assert (ROOT / "tf_release" / "py.typed").is_file()
    assert all(getattr(tf_release, name) is getattr(api, name) for name in tf_release.__all__)
    assert "open_project" in tf_release.__all__ and "deploy" in tf_release.__all__


def test_installing_the_package_never_pulls_the_development_tools() -> None:
    """They are a dependency group (PEP 735), which an index does not publish, not an extra."""
    found = metadata("tf-release")
    required = " ".join(found.get_all("Requires-Dist") or [])
    assert "pytest" not in required and "moto" not in required and "ruff" not in required
    assert found.get_all("Provides-Extra") == ["terraform"]
    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]
    assert any(tool.startswith("pytest") for tool in groups["dev"])

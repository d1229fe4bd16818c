"""The package as an index shows it: its licence file matches what pyproject.toml declares."""

from importlib.metadata import metadata
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_the_licence_is_the_mit_licence_the_metadata_declares() -> None:
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")
    found = metadata("tf-release")
    assert found["License-Expression"] == "MIT"
    assert found.get_all("License-File") == ["LICENSE"]
    assert "Environment :: Console" in found.get_all("Classifier")

"""Files tf-release writes on the operator's disk (the config, the board's page): refused before
anything is done when they cannot be written, then written whole or not at all."""

from collections.abc import Callable
from pathlib import Path

from tf_release.model.errors import BadInput


def check_writable(path: Path) -> Path:
    """Refused up front: work whose result cannot be written is not worth doing."""
    if not path.parent.is_dir():
        raise BadInput(f"cannot write {path}: the folder {path.parent} does not exist")
    if path.is_dir():
        raise BadInput(f"cannot write {path}: it is a folder")
    return path


def write_whole(path: Path, text: str, check: Callable[[Path], None] | None = None) -> None:
    """A draft beside `path` takes its name once written (and once `check` has passed it), so
    a reader never sees half a file and a refused one leaves nothing behind."""
    check_writable(path)
    draft = path.with_name(f".{path.name}.draft")
    try:
        draft.write_text(text, encoding="utf-8")
        if check is not None:
            check(draft)
        draft.replace(path)
    except OSError as error:
        raise BadInput(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        draft.unlink(missing_ok=True)

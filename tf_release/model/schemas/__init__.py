"""The JSON Schemas shipped with the package, loaded once and applied on every read and write."""

import json
from functools import cache
from importlib import resources
from typing import Any

from tf_release.model.errors import BadInput


def text(name: str) -> str:
    """Schema `name` as shipped: what `tf-release schema NAME` prints and init writes."""
    return resources.files(__name__).joinpath(f"{name}.schema.json").read_text("utf-8")


@cache
def _validator(name: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(text(name)))


def validate(name: str, document: object, where: str) -> None:
    """Raise BadInput naming `where`, the key and what is wrong, if `document` breaks `name`."""
    from jsonschema.exceptions import best_match

    error = best_match(_validator(name).iter_errors(document))
    if error is None:
        return
    path = ".".join(str(part) for part in error.absolute_path)
    message = error.message
    if error.validator == "pattern" and "description" in error.schema:  # a sentence, not a regex
        message = f"{error.instance!r} is not {error.schema['description']}"
    raise BadInput(f"{where}: {path + ': ' if path else ''}{message}")


def load(name: str, data: bytes, where: str) -> Any:
    """Parse stored JSON and check it against schema `name`; anything else is reported, not used."""
    try:
        document = json.loads(data)
    except ValueError as error:
        raise BadInput(f"{where}: not valid JSON ({error})") from None
    validate(name, document, where)
    return document

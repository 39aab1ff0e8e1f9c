"""One JSON Schema per job, and the one validator that checks job data against it.

The validator needs only the schema, never the job's class: the API, the UI, the admission check on a
kubectl-applied JobRun and the runner all validate the same way, even where the job's code is not
importable. Errors come back in Nautobot's shape, ``{"field": ["message", ...]}``.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

    from jobplane.variables import ScriptVariable

__all__ = [
    "NOT_A_DICT",
    "REQUIRED",
    "UNKNOWN_PROPERTY",
    "JobDataError",
    "build_schema",
    "validate_data",
]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
NOT_A_DICT = "Job data needs to be a dict"
UNKNOWN_PROPERTY = "Job data contained an unknown property"
REQUIRED = "This field is required."


class JobDataError(ValueError):
    """Job data that does not fit the job's variables; ``errors`` has Nautobot's shape."""

    def __init__(self, errors: dict[str, list[str]] | list[str]) -> None:
        self.errors = errors
        super().__init__(self._summary())

    def _summary(self) -> str:
        if isinstance(self.errors, list):
            return "; ".join(self.errors)
        return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in self.errors.items())

    def as_response(self) -> dict[str, Any]:
        """The body Nautobot answers with: ``{"errors": ...}``."""
        return {"errors": self.errors}


def build_schema(variables: Sequence[ScriptVariable], *, dryrun_default: bool = False) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a job's data, variables in form order."""
    properties = {var.name: var.json_schema(dryrun_default=dryrun_default) for var in variables}
    return {
        "$schema": SCHEMA_DIALECT,
        "type": "object",
        "properties": properties,
        "required": [var.name for var in variables if not var.fills_missing],
        "additionalProperties": False,
        "x-jobplane-order": [var.name for var in variables],
    }


# --- validation -------------------------------------------------------------------------------


def _is_ip_address(value: object) -> bool:
    return _parses(ipaddress.ip_address, value)


def _is_ip_interface(value: object) -> bool:
    # An address *with* its mask: a bare address is not enough for this variable.
    return isinstance(value, str) and "/" in value and _parses(ipaddress.ip_interface, value)


def _is_ip_network(value: object) -> bool:
    return isinstance(value, str) and "/" in value and _parses(ipaddress.ip_network, value)


def _is_uuid(value: object) -> bool:
    return _parses(uuid.UUID, value)


def _parses(parse: Any, value: object) -> bool:
    if not isinstance(value, str):
        return True  # "format" only applies to strings; "type" reports the rest.
    try:
        parse(value)
    except ValueError:
        return False
    return True


FORMAT_MESSAGES = {
    "ip-address": "Enter a valid IPv4 or IPv6 address, without a mask.",
    "ip-interface": "Enter a valid IPv4 or IPv6 address with a mask, e.g. 192.0.2.1/24.",
    "ip-network": "Enter a valid IP network in CIDR notation with no host bits set, e.g. 192.0.2.0/24.",
    "uuid": "Enter a valid UUID.",
}

TYPE_MESSAGES = {
    "integer": "Enter a whole number.",
    "boolean": "Enter true or false.",
    "string": "Enter a string.",
    "array": "Enter a list of values.",
    "object": "Enter an object.",
}


def _prefix_length(
    validator: Validator, bounds: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    # Local, as every jsonschema import here: a run whose inputs need no validating never loads jsonschema.
    from jsonschema.exceptions import ValidationError

    if not isinstance(instance, str) or not _is_ip_network(instance):
        return
    length = ipaddress.ip_network(instance).prefixlen
    if "minimum" in bounds and length < bounds["minimum"]:
        yield ValidationError(f"Prefix length must be at least /{bounds['minimum']} (it is /{length}).")
    if "maximum" in bounds and length > bounds["maximum"]:
        yield ValidationError(f"Prefix length must be at most /{bounds['maximum']} (it is /{length}).")


@cache
def _validator_class() -> Any:
    # Imported lazily: jsonschema is only needed when data is validated, not for every CLI start-up.
    from jsonschema import Draft202012Validator, FormatChecker, validators

    checker = FormatChecker(formats=())
    checker.checks("ip-address")(_is_ip_address)
    checker.checks("ip-interface")(_is_ip_interface)
    checker.checks("ip-network")(_is_ip_network)
    checker.checks("uuid")(_is_uuid)
    keywords = {"x-jobplane-prefix-length": _prefix_length}
    cls = validators.extend(Draft202012Validator, keywords)  # type: ignore[no-untyped-call]
    return lambda schema: cls(schema, format_checker=checker)


def _message(error: ValidationError, field_schema: Mapping[str, Any]) -> str:
    keyword: Any = error.validator
    value: Any = error.validator_value
    instance: Any = error.instance
    if keyword == "type":
        wanted = value if isinstance(value, str) else next((t for t in value if t != "null"), "")
        return TYPE_MESSAGES.get(wanted, error.message)
    if keyword == "minLength":
        if instance == "":
            return REQUIRED
        return f"Ensure this value has at least {value} characters (it has {len(instance)})."
    if keyword == "maxLength":
        return f"Ensure this value has at most {value} characters (it has {len(instance)})."
    if keyword == "pattern":
        return f"Invalid value. Must match regex: {value}"
    if keyword == "minimum":
        return f"Ensure this value is greater than or equal to {value}."
    if keyword == "maximum":
        return f"Ensure this value is less than or equal to {value}."
    if keyword == "enum":
        return f"Select a valid choice. {instance!r} is not one of the available choices."
    if keyword == "minItems":
        return REQUIRED if not instance else f"Choose at least {value} values."
    if keyword == "uniqueItems":
        return "Each value may be given only once."
    if keyword == "format":
        return FORMAT_MESSAGES.get(value, error.message)
    if keyword in ("anyOf", "minProperties") and "x-jobplane-model" in field_schema:
        model = str(field_schema["x-jobplane-model"]).rsplit(".", 1)[-1]
        return f"Enter a primary key of a {model}, or an object of column filters that matches exactly one."
    return str(error.message)


def validate_data(schema: Mapping[str, Any], data: Any) -> dict[str, Any]:
    """Check ``data`` against a job schema; return it with defaults filled in, or raise JobDataError.

    Unknown keys, missing required fields and every broken bound are reported together, field by field.
    A null for an optional field means "not given".
    """
    if not isinstance(data, Mapping):
        raise JobDataError([NOT_A_DICT])
    properties: Mapping[str, Any] = schema.get("properties", {})
    errors: dict[str, list[str]] = {}
    for key in data:
        if key not in properties:
            errors[str(key)] = [UNKNOWN_PROPERTY]

    required = set(schema.get("required", ()))
    cleaned: dict[str, Any] = {}
    for name, field_schema in properties.items():
        if name in data and data[name] is not None:
            cleaned[name] = data[name]
        elif name in required:
            errors[name] = [REQUIRED]
        elif "default" in field_schema:
            cleaned[name] = field_schema["default"]
        else:
            cleaned[name] = None

    known = {key: value for key, value in cleaned.items() if key not in errors and value is not None}
    if not known:
        # Nothing left to check value by value (a job without variables, or only nulls): skip building
        # the validator, which is most of the cost of a small job's start-up.
        if errors:
            raise JobDataError(errors)
        return cleaned
    for error in _validator_class()(schema).iter_errors(known):
        if not error.absolute_path:
            continue  # Top-level problems (required, additionalProperties) were reported above.
        field = str(error.absolute_path[0])
        message = _message(error, properties.get(field, {}))
        messages = errors.setdefault(field, [])
        if message not in messages:
            messages.append(message)
    if errors:
        raise JobDataError(errors)
    return cleaned

"""Job input variables: each one describes itself as JSON Schema and turns a validated value into Python."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = [
    "BooleanVar",
    "ChoiceVar",
    "DryRunVar",
    "FileVar",
    "IPAddressVar",
    "IPAddressWithMaskVar",
    "IPNetworkVar",
    "IntegerVar",
    "JSONVar",
    "MultiChoiceVar",
    "MultiObjectVar",
    "ObjectVar",
    "ResolveContext",
    "ScriptVariable",
    "StringVar",
    "TextVar",
    "VariableError",
]

# Vendor keywords we add to the JSON Schema; standard validators ignore them, ours reads a few.
X_TYPE = "x-jobplane-type"


class VariableError(ValueError):
    """A value that passed the schema but cannot be turned into what run() receives (e.g. no such row)."""


class ResolveContext(Protocol):
    """What converting values into run() arguments may need from the runner."""

    @property
    def db(self) -> Session: ...

    def open_input_file(self, file_id: str) -> Any: ...


def _pretty_name(name: str) -> str:
    # Django's pretty_name, which Nautobot uses for default labels: "my_var" -> "My var".
    return name.replace("_", " ").capitalize() if name else ""


class ScriptVariable:
    """Base of every variable type; options shared by all: label, description, default, required."""

    type_name: ClassVar[str] = "ScriptVariable"

    def __init__(
        self,
        label: str = "",
        description: str = "",
        default: Any = None,
        required: bool = True,
        widget: str | None = None,
    ) -> None:
        if not isinstance(label, str):
            raise TypeError(f"{type(self).__name__}: label must be a string, not {type(label).__name__}")
        if not isinstance(description, str):
            raise TypeError(
                f"{type(self).__name__}: description must be a string, not {type(description).__name__}"
            )
        self.name = ""
        self._label = label
        self.description = description
        self.default = default
        self.required = bool(required)
        self.widget = widget

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    @property
    def label(self) -> str:
        return self._label or _pretty_name(self.name)

    # --- schema ---------------------------------------------------------------------------
    def value_schema(self) -> dict[str, Any]:
        """The JSON Schema of a present, non-null value."""
        raise NotImplementedError

    def json_schema(self, *, dryrun_default: bool = False) -> dict[str, Any]:
        """The property schema: the value schema plus label, help text, default, and null when optional."""
        schema: dict[str, Any] = {"title": self.label, X_TYPE: self.type_name}
        if self.description:
            schema["description"] = self.description
        value = self.value_schema()
        if not self.required:
            value = _allow_null(value)
        schema.update(value)
        default = self.schema_default(dryrun_default=dryrun_default)
        if default is not None:
            schema["default"] = default
        if self.widget:
            schema["x-jobplane-widget"] = self.widget
        return schema

    def schema_default(self, *, dryrun_default: bool = False) -> Any:
        return self.default

    @property
    def fills_missing(self) -> bool:
        """Whether a missing value is acceptable (optional, or a default stands in)."""
        return not self.required or self.default is not None

    # --- values ---------------------------------------------------------------------------
    def to_python(self, value: Any, context: ResolveContext | None) -> Any:
        """Turn a schema-valid JSON value into what run() receives."""
        return value

    def resolve(self, value: Any, context: ResolveContext) -> Any:  # pragma: no cover - overridden
        """Check a value against live data (ObjectVar rows, uploaded files); raise VariableError."""
        return value


def _allow_null(schema: dict[str, Any]) -> dict[str, Any]:
    schema = dict(schema)
    if "enum" in schema:
        schema["enum"] = [*schema["enum"], None]
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        schema["type"] = [*types, "null"]
    elif "anyOf" in schema:
        schema["anyOf"] = [*schema["anyOf"], {"type": "null"}]
    return schema


def _check_bound(owner: str, option: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}: {option} must be an integer, not {type(value).__name__}")
    return value


class StringVar(ScriptVariable):
    """A single line of text, with optional length bounds and a regular expression it must match."""

    type_name = "StringVar"

    def __init__(
        self,
        min_length: int | None = None,
        max_length: int | None = None,
        regex: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.min_length = _check_bound(type(self).__name__, "min_length", min_length)
        self.max_length = _check_bound(type(self).__name__, "max_length", max_length)
        if self.min_length is not None and self.min_length < 0:
            raise ValueError(f"{type(self).__name__}: min_length must not be negative")
        if self.min_length is not None and self.max_length is not None and self.min_length > self.max_length:
            raise ValueError(f"{type(self).__name__}: min_length is above max_length")
        if regex is not None:
            try:
                re.compile(regex)
            except re.error as exc:
                raise ValueError(f"{type(self).__name__}: regex {regex!r} does not compile: {exc}") from exc
        self.regex = regex

    def value_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string"}
        # An empty string is no answer to a required field (Django's rule), so required means >= 1.
        minimum = self.min_length or 0
        if self.required:
            minimum = max(minimum, 1)
        if minimum or self.min_length is not None:
            schema["minLength"] = minimum
        if self.max_length is not None:
            schema["maxLength"] = self.max_length
        if self.regex is not None:
            schema["pattern"] = self.regex
        return schema


class TextVar(StringVar):
    """Free text over several lines (a textarea in the form)."""

    type_name = "TextVar"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", "textarea")
        super().__init__(**kwargs)


class IntegerVar(ScriptVariable):
    """A whole number with optional bounds; a bound of 0 is a bound."""

    type_name = "IntegerVar"

    def __init__(self, min_value: int | None = None, max_value: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.min_value = _check_bound(type(self).__name__, "min_value", min_value)
        self.max_value = _check_bound(type(self).__name__, "max_value", max_value)
        if self.min_value is not None and self.max_value is not None and self.min_value > self.max_value:
            raise ValueError(f"{type(self).__name__}: min_value is above max_value")

    def value_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "integer"}
        if self.min_value is not None:
            schema["minimum"] = self.min_value
        if self.max_value is not None:
            schema["maximum"] = self.max_value
        return schema

    def to_python(self, value: Any, context: ResolveContext | None) -> Any:
        return int(value)


class BooleanVar(ScriptVariable):
    """True or false; never required (an unticked box is an answer), default False."""

    type_name = "BooleanVar"

    def __init__(self, **kwargs: Any) -> None:
        kwargs["required"] = False
        super().__init__(**kwargs)
        if self.default is None:
            self.default = False
        if not isinstance(self.default, bool):
            raise TypeError(f"{type(self).__name__}: default must be True or False")

    def value_schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


class DryRunVar(BooleanVar):
    """The dry-run switch: its default is the job's Meta.dryrun_default; the job decides what it skips."""

    type_name = "DryRunVar"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("description", "Check that the job would run, without making any changes.")
        kwargs["default"] = False
        super().__init__(**kwargs)

    def schema_default(self, *, dryrun_default: bool = False) -> Any:
        return bool(dryrun_default)


def _normalise_choices(owner: str, choices: Any) -> list[tuple[Any, str]]:
    if isinstance(choices, Mapping):
        pairs: Iterable[Any] = choices.items()
    elif isinstance(choices, Iterable) and not isinstance(choices, str | bytes):
        pairs = choices
    else:
        raise TypeError(f"{owner}: choices must be a list of (value, label) pairs")
    result: list[tuple[Any, str]] = []
    for pair in pairs:
        if isinstance(pair, list | tuple) and len(pair) == 2:
            value, label = pair
        else:
            value, label = pair, str(pair)
        if not isinstance(value, str | int | float | bool):
            raise TypeError(f"{owner}: choice value {value!r} is not a string or a number")
        result.append((value, str(label)))
    if not result:
        raise ValueError(f"{owner}: choices must not be empty")
    return result


class ChoiceVar(ScriptVariable):
    """One value out of a fixed list of (value, label) pairs."""

    type_name = "ChoiceVar"

    def __init__(self, choices: Sequence[Any] | Mapping[Any, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.choices = _normalise_choices(type(self).__name__, choices)

    def value_schema(self) -> dict[str, Any]:
        return {
            "enum": [value for value, _ in self.choices],
            "x-jobplane-choices": [[value, label] for value, label in self.choices],
        }


class MultiChoiceVar(ChoiceVar):
    """Several values out of a fixed list; required means at least one."""

    type_name = "MultiChoiceVar"

    def value_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": "array",
            "items": {"enum": [value for value, _ in self.choices]},
            "uniqueItems": True,
            "x-jobplane-choices": [[value, label] for value, label in self.choices],
        }
        if self.required:
            schema["minItems"] = 1
        return schema


def _model_path(model: Any) -> str:
    return f"{model.__module__}.{model.__qualname__}"


class ObjectVar(ScriptVariable):
    """One row of a SQLAlchemy model, given by primary key or by a dict of column filters matching one row."""

    type_name = "ObjectVar"

    def __init__(
        self,
        model: Any = None,
        display_field: str = "display",
        query_params: Mapping[str, Any] | None = None,
        null_option: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # Local, as each SQLAlchemy import of this module: only jobs with an ObjectVar load SQLAlchemy.
        from sqlalchemy import inspect as sa_inspect
        from sqlalchemy.exc import NoInspectionAvailable

        try:
            mapper = sa_inspect(model)
        except NoInspectionAvailable:
            mapper = None
        if model is None or mapper is None or not hasattr(mapper, "primary_key"):
            raise TypeError(f"{type(self).__name__}: model must be a SQLAlchemy mapped class, not {model!r}")
        if len(mapper.primary_key) != 1:
            raise TypeError(
                f"{type(self).__name__}: model {model.__name__} must have a single-column primary key"
            )
        self.model = model
        self.display_field = display_field
        self.query_params = dict(query_params or {})
        self.null_option = null_option

    def value_schema(self) -> dict[str, Any]:
        from sqlalchemy import inspect as sa_inspect

        mapper = sa_inspect(self.model)
        table = mapper.local_table
        return {
            "anyOf": [self._key_schema(), {"type": "object", "minProperties": 1}],
            "x-jobplane-model": _model_path(self.model),
            "x-jobplane-display-field": self.display_field,
            "x-jobplane-query-params": self.query_params,
            # Where the rows are, for the web UI to offer them as choices without importing the job.
            "x-jobplane-table": {
                "schema": getattr(table, "schema", None),
                "name": getattr(table, "name", None),
                "key": mapper.primary_key[0].name,
            },
        }

    @staticmethod
    def _key_schema() -> dict[str, Any]:
        return {"type": ["string", "integer"], "minLength": 1}

    # --- resolution against the database --------------------------------------------------
    def _static_filters(self) -> dict[str, Any]:
        # "$other_var" parameters only shape the form's choices; fixed ones also restrict what is valid.
        return {
            key: value
            for key, value in self.query_params.items()
            if not (isinstance(value, str) and value.startswith("$"))
        }

    def _lookup(self, session: Session, key: Any) -> Any:
        from sqlalchemy import inspect as sa_inspect
        from sqlalchemy import select

        mapper = sa_inspect(self.model)
        model_name = self.model.__name__
        filters = dict(key) if isinstance(key, Mapping) else {mapper.primary_key[0].key: key}
        columns = {attr.key: attr for attr in mapper.column_attrs}
        statement = select(self.model)
        for column_name, wanted in {**self._static_filters(), **filters}.items():
            if column_name not in columns:
                known = ", ".join(sorted(columns))
                raise VariableError(f"{model_name} has no column {column_name!r} (columns: {known})")
            column = getattr(self.model, column_name)
            if isinstance(wanted, list | tuple) and column_name in self._static_filters():
                statement = statement.where(column.in_(list(wanted)))
            else:
                statement = statement.where(column == _coerce_key(columns[column_name], wanted))
        rows = session.scalars(statement.limit(2)).all()
        if not rows:
            raise VariableError(f"No {model_name} matches {key!r}.")
        if len(rows) > 1:
            raise VariableError(
                f"More than one {model_name} matches {key!r}; give filters that match exactly one."
            )
        return rows[0]

    def resolve(self, value: Any, context: ResolveContext) -> Any:
        if value is None:
            return None
        return self._lookup(context.db, value)

    def to_python(self, value: Any, context: ResolveContext | None) -> Any:
        if context is None:
            return value
        return self.resolve(value, context)


def _coerce_key(column_attr: Any, value: Any) -> Any:
    """A primary key typed as text ("42") compared with an integer column is still key 42."""
    try:
        python_type = column_attr.columns[0].type.python_type
    except (NotImplementedError, AttributeError, IndexError):
        return value
    if python_type is int and isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if python_type is str and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


class MultiObjectVar(ObjectVar):
    """Several rows of a SQLAlchemy model, as a list of primary keys (or filter dicts); all must exist."""

    type_name = "MultiObjectVar"

    def value_schema(self) -> dict[str, Any]:
        schema = super().value_schema()
        items = {"anyOf": schema.pop("anyOf")}
        schema.update({"type": "array", "items": items, "uniqueItems": True})
        if self.required:
            schema["minItems"] = 1
        return schema

    def resolve(self, value: Any, context: ResolveContext) -> Any:
        if value is None:
            return []
        errors: list[str] = []
        rows = []
        for key in value:
            try:
                rows.append(self._lookup(context.db, key))
            except VariableError as exc:
                errors.append(str(exc))
        if errors:
            raise VariableError(" ".join(errors))
        return rows


class FileVar(ScriptVariable):
    """An uploaded file; the data carries the id of its stored copy, run() receives a readable file."""

    type_name = "FileVar"

    def value_schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "uuid"}

    def to_python(self, value: Any, context: ResolveContext | None) -> Any:
        if context is None or value is None:
            return value
        return context.open_input_file(value)


class IPAddressVar(ScriptVariable):
    """An IPv4 or IPv6 address without a mask; run() receives an ipaddress.IPv4Address/IPv6Address."""

    type_name = "IPAddressVar"
    _format = "ip-address"

    def parse(self, value: str) -> Any:
        return ipaddress.ip_address(value)

    def value_schema(self) -> dict[str, Any]:
        return {"type": "string", "format": self._format}

    def to_python(self, value: Any, context: ResolveContext | None) -> Any:
        return None if value is None else self.parse(value)


class IPAddressWithMaskVar(IPAddressVar):
    """An address with its prefix length, host bits kept (10.0.0.1/24); run() receives an ip_interface."""

    type_name = "IPAddressWithMaskVar"
    _format = "ip-interface"

    def parse(self, value: str) -> Any:
        return ipaddress.ip_interface(value)


class IPNetworkVar(IPAddressVar):
    """A network in CIDR notation, host bits zero, with optional prefix-length bounds."""

    type_name = "IPNetworkVar"
    _format = "ip-network"

    def parse(self, value: str) -> Any:
        return ipaddress.ip_network(value)

    def __init__(
        self, min_prefix_length: int | None = None, max_prefix_length: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.min_prefix_length = _check_bound(type(self).__name__, "min_prefix_length", min_prefix_length)
        self.max_prefix_length = _check_bound(type(self).__name__, "max_prefix_length", max_prefix_length)
        for bound in (self.min_prefix_length, self.max_prefix_length):
            if bound is not None and not 0 <= bound <= 128:
                raise ValueError(f"{type(self).__name__}: a prefix length must be between 0 and 128")
        if (
            self.min_prefix_length is not None
            and self.max_prefix_length is not None
            and self.min_prefix_length > self.max_prefix_length
        ):
            raise ValueError(f"{type(self).__name__}: min_prefix_length is above max_prefix_length")

    def value_schema(self) -> dict[str, Any]:
        schema = super().value_schema()
        bounds = {}
        if self.min_prefix_length is not None:
            bounds["minimum"] = self.min_prefix_length
        if self.max_prefix_length is not None:
            bounds["maximum"] = self.max_prefix_length
        if bounds:
            schema["x-jobplane-prefix-length"] = bounds
        return schema


class JSONVar(ScriptVariable):
    """Any JSON value; run() receives it parsed."""

    type_name = "JSONVar"

    def value_schema(self) -> dict[str, Any]:
        # No "type": any JSON value is fine; null is handled by "required".
        return {"x-jobplane-json": True}

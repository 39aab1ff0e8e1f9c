"""Each variable type, valid, invalid and at its bounds (0 included), through the one schema validator."""

from __future__ import annotations

import ipaddress
from typing import Any

import jsonschema
import pytest
from sqlalchemy import String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from jobplane import (
    BooleanVar,
    ChoiceVar,
    DryRunVar,
    FileVar,
    IntegerVar,
    IPAddressVar,
    IPAddressWithMaskVar,
    IPNetworkVar,
    JSONVar,
    MultiChoiceVar,
    MultiObjectVar,
    ObjectVar,
    StringVar,
    TextVar,
)
from jobplane.schema import REQUIRED, JobDataError, build_schema, validate_data
from jobplane.variables import ScriptVariable, VariableError


class Base(DeclarativeBase):
    pass


class Widget(Base):
    __tablename__ = "widget"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    colour: Mapped[str] = mapped_column(String(20))


def _schema(var: ScriptVariable, name: str = "field") -> dict[str, Any]:
    var.__set_name__(object, name)
    return build_schema([var])


def ok(var: ScriptVariable, value: Any) -> Any:
    """Validate one value; the generated schema must agree with the reference validator too."""
    schema = _schema(var)
    cleaned = validate_data(schema, {"field": value})
    jsonschema.Draft202012Validator(schema).validate({"field": value})
    return cleaned["field"]


def errors(var: ScriptVariable, value: Any) -> list[str]:
    schema = _schema(var)
    with pytest.raises(JobDataError) as caught:
        validate_data(schema, {"field": value})
    assert isinstance(caught.value.errors, dict)
    return caught.value.errors["field"]


# --- StringVar / TextVar ---------------------------------------------------------------------


def test_string_length_bounds_are_inclusive() -> None:
    var = StringVar(min_length=2, max_length=4)
    assert ok(var, "ab") == "ab"
    assert ok(var, "abcd") == "abcd"
    assert errors(var, "a") == ["Ensure this value has at least 2 characters (it has 1)."]
    assert errors(var, "abcde") == ["Ensure this value has at most 4 characters (it has 5)."]


def test_string_max_length_zero_is_honoured_for_optional_field() -> None:
    var = StringVar(max_length=0, required=False)
    assert ok(var, "") == ""
    assert errors(var, "x") == ["Ensure this value has at most 0 characters (it has 1)."]


def test_string_min_length_zero_allows_empty_only_when_optional() -> None:
    assert ok(StringVar(min_length=0, required=False), "") == ""
    assert errors(StringVar(min_length=0), "") == [REQUIRED]


def test_string_regex() -> None:
    var = StringVar(regex=r"^[a-z]+-\d+$")
    assert ok(var, "leaf-12") == "leaf-12"
    assert errors(var, "Leaf-12") == [r"Invalid value. Must match regex: ^[a-z]+-\d+$"]


def test_string_rejects_non_strings() -> None:
    assert errors(StringVar(), 12) == ["Enter a string."]


def test_string_bad_regex_is_refused_at_declaration() -> None:
    with pytest.raises(ValueError, match="does not compile"):
        StringVar(regex="(")


def test_text_var_is_a_string_with_a_textarea() -> None:
    var = TextVar(max_length=10)
    assert ok(var, "two\nlines") == "two\nlines"
    assert _schema(var)["properties"]["field"]["x-jobplane-widget"] == "textarea"


# --- IntegerVar -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "valid"), [(-1, False), (0, True), (5, True), (10, True), (11, False)])
def test_integer_bounds_with_zero_minimum(value: int, valid: bool) -> None:
    var = IntegerVar(min_value=0, max_value=10)
    if valid:
        assert ok(var, value) == value
    else:
        assert len(errors(var, value)) == 1


def test_integer_maximum_zero_is_a_bound() -> None:
    var = IntegerVar(max_value=0)
    assert ok(var, 0) == 0
    assert ok(var, -3) == -3
    assert errors(var, 1) == ["Ensure this value is less than or equal to 0."]


def test_integer_minimum_message() -> None:
    assert errors(IntegerVar(min_value=0), -1) == ["Ensure this value is greater than or equal to 0."]


@pytest.mark.parametrize("value", ["3", 2.5, True, None, [1]])
def test_integer_rejects_non_integers(value: Any) -> None:
    expected = [REQUIRED] if value is None else ["Enter a whole number."]
    assert errors(IntegerVar(), value) == expected


def test_integer_declared_bounds_must_be_integers() -> None:
    with pytest.raises(TypeError, match="min_value must be an integer"):
        IntegerVar(min_value=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="above max_value"):
        IntegerVar(min_value=2, max_value=1)


# --- BooleanVar / DryRunVar -----------------------------------------------------------------------


def test_boolean_is_never_required_and_defaults_false() -> None:
    var = BooleanVar()
    schema = _schema(var)
    assert schema["required"] == []
    assert validate_data(schema, {}) == {"field": False}
    assert ok(var, True) is True
    assert errors(var, "yes") == ["Enter true or false."]


def test_dryrun_default_comes_from_meta() -> None:
    var = DryRunVar()
    var.__set_name__(object, "dryrun")
    assert build_schema([var], dryrun_default=True)["properties"]["dryrun"]["default"] is True
    assert validate_data(build_schema([var], dryrun_default=True), {}) == {"dryrun": True}
    assert validate_data(build_schema([var], dryrun_default=False), {}) == {"dryrun": False}


# --- ChoiceVar / MultiChoiceVar -------------------------------------------------------------------


def test_choice() -> None:
    var = ChoiceVar(choices=[("leaf", "Leaf switch"), ("spine", "Spine switch")])
    assert ok(var, "spine") == "spine"
    assert errors(var, "core") == ["Select a valid choice. 'core' is not one of the available choices."]
    schema = _schema(var)["properties"]["field"]
    assert schema["x-jobplane-choices"] == [["leaf", "Leaf switch"], ["spine", "Spine switch"]]


def test_choice_needs_choices() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        ChoiceVar(choices=[])


def test_multi_choice() -> None:
    var = MultiChoiceVar(choices=[("a", "A"), ("b", "B"), ("c", "C")])
    assert ok(var, ["a", "c"]) == ["a", "c"]
    assert errors(var, []) == [REQUIRED]
    assert errors(var, ["a", "z"]) == ["Select a valid choice. 'z' is not one of the available choices."]
    assert errors(var, ["a", "a"]) == ["Each value may be given only once."]
    assert errors(var, "a") == ["Enter a list of values."]


def test_optional_multi_choice_accepts_empty_list() -> None:
    assert ok(MultiChoiceVar(choices=["a"], required=False), []) == []


# --- ObjectVar / MultiObjectVar -------------------------------------------------------------------


@pytest.fixture
def widgets() -> Session:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    session = Session(engine)
    session.add_all(
        [
            Widget(id=1, name="alpha", colour="red"),
            Widget(id=2, name="beta", colour="red"),
            Widget(id=3, name="gamma", colour="blue"),
        ]
    )
    session.commit()
    return session


class _Context:
    def __init__(self, session: Session) -> None:
        self.db = session

    def open_input_file(self, file_id: str) -> Any:
        raise NotImplementedError


def test_object_var_schema_accepts_key_or_filters() -> None:
    var = ObjectVar(model=Widget, display_field="name", query_params={"colour": "red"})
    assert ok(var, 1) == 1
    assert ok(var, "1") == "1"
    assert ok(var, {"name": "alpha"}) == {"name": "alpha"}
    message = "Enter a primary key of a Widget, or an object of column filters that matches exactly one."
    assert errors(var, {}) == [message]
    assert errors(var, [1]) == [message]
    prop = _schema(var)["properties"]["field"]
    assert prop["x-jobplane-model"].endswith("test_variables.Widget")
    assert prop["x-jobplane-display-field"] == "name"
    assert prop["x-jobplane-query-params"] == {"colour": "red"}


def test_object_var_resolves_by_key_and_by_filters(widgets: Session) -> None:
    var = ObjectVar(model=Widget)
    context = _Context(widgets)
    assert var.to_python(2, context).name == "beta"
    assert var.to_python("3", context).name == "gamma"
    assert var.to_python({"name": "alpha"}, context).id == 1


def test_object_var_refuses_no_match_several_matches_and_unknown_columns(widgets: Session) -> None:
    var = ObjectVar(model=Widget)
    context = _Context(widgets)
    with pytest.raises(VariableError, match="No Widget matches 99"):
        var.resolve(99, context)
    with pytest.raises(VariableError, match="More than one Widget"):
        var.resolve({"colour": "red"}, context)
    with pytest.raises(VariableError, match="no column 'size'"):
        var.resolve({"size": 3}, context)


def test_object_var_static_query_params_restrict_valid_rows(widgets: Session) -> None:
    var = ObjectVar(model=Widget, query_params={"colour": "red", "name": "$other"})
    context = _Context(widgets)
    assert var.resolve(1, context).name == "alpha"
    with pytest.raises(VariableError, match="No Widget matches 3"):
        var.resolve(3, context)


def test_object_var_needs_a_mapped_model() -> None:
    with pytest.raises(TypeError, match="SQLAlchemy mapped class"):
        ObjectVar(model=dict)


def test_multi_object_var(widgets: Session) -> None:
    var = MultiObjectVar(model=Widget)
    assert ok(var, [1, "3"]) == [1, "3"]
    assert errors(var, []) == [REQUIRED]
    context = _Context(widgets)
    assert [w.name for w in var.resolve([1, 3], context)] == ["alpha", "gamma"]
    with pytest.raises(VariableError, match="No Widget matches 7"):
        var.resolve([1, 7], context)


# --- FileVar, IP variables, JSONVar ---------------------------------------------------------------


def test_file_var_takes_a_stored_file_id() -> None:
    assert ok(FileVar(), "2f1d9c84-0c8e-4a3a-9d2c-3a4f7d1e6b10")
    assert errors(FileVar(), "report.csv") == ["Enter a valid UUID."]


@pytest.mark.parametrize("value", ["192.0.2.1", "2001:db8::1"])
def test_ip_address_var_accepts_v4_and_v6(value: str) -> None:
    var = IPAddressVar()
    assert ok(var, value) == value
    assert var.to_python(value, None) == ipaddress.ip_address(value)


@pytest.mark.parametrize("value", ["192.0.2.1/24", "300.1.1.1", "host", ""])
def test_ip_address_var_rejects_masks_and_garbage(value: str) -> None:
    assert errors(IPAddressVar(), value)


def test_ip_address_with_mask_keeps_host_bits() -> None:
    var = IPAddressWithMaskVar()
    assert ok(var, "10.0.0.7/24") == "10.0.0.7/24"
    assert str(var.to_python("10.0.0.7/24", None)) == "10.0.0.7/24"
    assert errors(var, "10.0.0.7") == ["Enter a valid IPv4 or IPv6 address with a mask, e.g. 192.0.2.1/24."]


def test_ip_network_var_prefix_bounds_inclusive_including_zero() -> None:
    var = IPNetworkVar(min_prefix_length=0, max_prefix_length=24)
    assert ok(var, "0.0.0.0/0") == "0.0.0.0/0"
    assert ok(var, "10.0.0.0/24") == "10.0.0.0/24"
    assert errors(var, "10.0.0.0/25") == ["Prefix length must be at most /24 (it is /25)."]
    narrow = IPNetworkVar(min_prefix_length=16)
    assert errors(narrow, "10.0.0.0/8") == ["Prefix length must be at least /16 (it is /8)."]
    assert narrow.to_python("10.1.0.0/16", None) == ipaddress.ip_network("10.1.0.0/16")


def test_ip_network_var_rejects_host_bits() -> None:
    assert errors(IPNetworkVar(), "10.0.0.1/24") == [
        "Enter a valid IP network in CIDR notation with no host bits set, e.g. 192.0.2.0/24."
    ]


def test_json_var_takes_any_json_but_not_null_when_required() -> None:
    var = JSONVar()
    assert ok(var, {"a": [1, 2]}) == {"a": [1, 2]}
    assert ok(var, [1, "x"]) == [1, "x"]
    assert ok(var, 0) == 0
    assert errors(var, None) == [REQUIRED]


# --- common options -------------------------------------------------------------------------------


def test_label_defaults_to_pretty_name_and_description_is_help_text() -> None:
    var = StringVar(description="Where it goes")
    prop = _schema(var, "site_name")["properties"]["site_name"]
    assert prop["title"] == "Site name"
    assert prop["description"] == "Where it goes"
    assert prop["x-jobplane-type"] == "StringVar"


def test_default_fills_a_missing_value_and_optional_missing_is_none() -> None:
    a = StringVar(default="x")
    a.__set_name__(object, "a")
    b = IntegerVar(required=False)
    b.__set_name__(object, "b")
    schema = build_schema([a, b])
    assert schema["required"] == []
    assert validate_data(schema, {}) == {"a": "x", "b": None}
    assert validate_data(schema, {"b": None}) == {"a": "x", "b": None}

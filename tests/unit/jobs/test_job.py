"""Job classes: Meta defaults and checks, variables order, the job schema, registration."""

from __future__ import annotations

import sys
import types
from typing import Any

import jsonschema
import pytest

from jobplane import BooleanVar, DryRunVar, IntegerVar, Job, StringVar, register_jobs
from jobplane.job import clear_registry, registered_jobs
from jobplane.schema import NOT_A_DICT, UNKNOWN_PROPERTY, JobDataError, validate_data
from jobplane.settings import Settings


class Plain(Job):
    def run(self) -> None:
        pass


def test_meta_defaults_are_nautobots() -> None:
    props = Plain.properties()
    assert props.name == "Plain"
    assert props.description == ""
    assert props.grouping == __name__
    assert props.approval_required is False
    assert props.dryrun_default is False
    assert props.has_sensitive_variables is True
    assert props.hidden is False
    assert props.is_singleton is False
    assert props.soft_time_limit == 0
    assert props.time_limit == 0
    assert props.task_queues == ("default",)
    assert props.field_order == ()


def test_module_level_name_is_the_default_grouping() -> None:
    module = types.ModuleType("grouped_jobs")
    module.name = "Compliance"  # type: ignore[attr-defined]
    sys.modules["grouped_jobs"] = module
    try:
        cls = type("Check", (Job,), {"__module__": "grouped_jobs", "run": lambda self: None})
        assert cls.properties().grouping == "Compliance"
    finally:
        del sys.modules["grouped_jobs"]


def test_description_is_dedented() -> None:
    class Described(Job):
        class Meta:
            description = """
                First line.

                    Indented detail.
            """

        def run(self) -> None:
            pass

    assert Described.properties().description == "First line.\n\n    Indented detail."


def test_time_limits_zero_mean_system_defaults_and_floats_are_accepted() -> None:
    class Limited(Job):
        class Meta:
            soft_time_limit = 1.5
            time_limit = 0

        def run(self) -> None:
            pass

    limits = Limited.properties().time_limits(Settings(soft_time_limit=300, time_limit=600))
    assert (limits.soft, limits.hard) == (1.5, 600)
    assert limits.warning is None
    defaults = Plain.properties().time_limits(Settings())
    assert (defaults.soft, defaults.hard) == (300, 600)


def test_warning_when_hard_limit_is_not_above_soft_limit() -> None:
    class Backwards(Job):
        class Meta:
            soft_time_limit = 10
            time_limit = 10

        def run(self) -> None:
            pass

    warning = Backwards.properties().time_limits(Settings()).warning
    assert warning is not None
    assert "not above the soft time limit" in warning


@pytest.mark.parametrize(
    ("attr", "value", "message"),
    [
        ("name", 3, "Meta.name must be str"),
        ("has_sensitive_variables", "no", "Meta.has_sensitive_variables must be bool"),
        ("soft_time_limit", "60", "Meta.soft_time_limit must be int or float"),
        ("time_limit", True, "Meta.time_limit must be int or float"),
        ("task_queues", "default", "Meta.task_queues must be list or tuple"),
        ("task_queues", ["ok", ""], "must hold queue names"),
    ],
)
def test_meta_types_are_checked(attr: str, value: Any, message: str) -> None:
    cls = type("Bad", (Job,), {"Meta": type("Meta", (), {attr: value}), "run": lambda self: None})
    with pytest.raises(TypeError, match=message):
        cls.properties()


def test_negative_time_limit_is_refused() -> None:
    cls = type("Bad", (Job,), {"Meta": type("Meta", (), {"time_limit": -1}), "run": lambda self: None})
    with pytest.raises(ValueError, match="must not be negative"):
        cls.properties()


class Parent(Job):
    first = StringVar()
    second = IntegerVar(required=False)

    def run(self, **kwargs: Any) -> None:
        pass


class Child(Parent):
    third = BooleanVar()
    dryrun = DryRunVar()

    class Meta:
        field_order = ("dryrun", "second")
        dryrun_default = True


def test_variables_parent_first_then_field_order() -> None:
    assert [v.name for v in Parent.variables()] == ["first", "second"]
    assert [v.name for v in Child.variables()] == ["dryrun", "second", "first", "third"]
    assert Child.json_schema()["x-jobplane-order"] == ["dryrun", "second", "first", "third"]


def test_field_order_naming_an_unknown_variable_is_an_error() -> None:
    cls = type(
        "Bad",
        (Job,),
        {"Meta": type("Meta", (), {"field_order": ["nope"]}), "x": StringVar(), "run": lambda self, x: None},
    )
    with pytest.raises(ValueError, match="unknown variables: nope"):
        cls.variables()


def test_supports_dryrun_only_for_dryrunvar_named_dryrun() -> None:
    assert Child.supports_dryrun() is True
    assert Parent.supports_dryrun() is False
    cls = type("Other", (Job,), {"dryrun": BooleanVar(), "run": lambda self, dryrun: None})
    assert cls.supports_dryrun() is False


def test_job_schema_is_valid_draft_2020_12_and_carries_dryrun_default() -> None:
    schema = Child.json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["first"]
    assert schema["properties"]["dryrun"]["default"] is True


def test_job_data_errors_in_nautobot_shape() -> None:
    schema = Child.json_schema()
    with pytest.raises(JobDataError) as caught:
        validate_data(schema, {"second": "x", "extra": 1})
    assert caught.value.as_response() == {
        "errors": {
            "extra": [UNKNOWN_PROPERTY],
            "first": ["This field is required."],
            "second": ["Enter a whole number."],
        }
    }


@pytest.mark.parametrize("data", [[], "x", 3, None])
def test_job_data_that_is_not_an_object_is_refused(data: Any) -> None:
    with pytest.raises(JobDataError) as caught:
        validate_data(Child.json_schema(), data)
    assert caught.value.as_response() == {"errors": [NOT_A_DICT]}


def test_valid_data_gets_defaults() -> None:
    assert validate_data(Child.json_schema(), {"first": "a"}) == {
        "dryrun": True,
        "second": None,
        "first": "a",
        "third": False,
    }


# --- register_jobs ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _clean_registry() -> Any:
    yield
    clear_registry(__name__)


def test_register_jobs_makes_classes_visible_by_class_path() -> None:
    register_jobs(Parent)
    assert registered_jobs()[f"{__name__}.Parent"] is Parent
    assert f"{__name__}.Child" not in registered_jobs()


def test_register_jobs_refuses_non_jobs_and_jobs_without_run() -> None:
    with pytest.raises(TypeError, match="takes Job subclasses"):
        register_jobs(dict)  # type: ignore[arg-type]
    no_run = type("NoRun", (Job,), {})
    with pytest.raises(TypeError, match="does not implement run"):
        register_jobs(no_run)


def test_register_jobs_checks_run_accepts_every_variable() -> None:
    cls = type("Mismatch", (Job,), {"a": StringVar(), "b": StringVar(), "run": lambda self, *, a: None})
    with pytest.raises(TypeError, match=r"run\(\) does not accept the variables b"):
        register_jobs(cls)


def test_load_yaml_and_load_json_read_files_next_to_the_job(tmp_path: Any) -> None:
    (tmp_path / "sites.yaml").write_text("sites:\n  - name: ams1\n    racks: 0\n")
    (tmp_path / "roles.json").write_text('{"roles": ["leaf", "spine"]}')
    module_path = tmp_path / "data_job.py"
    module_path.write_text(
        "from jobplane import Job\n\nclass DataJob(Job):\n    def run(self):\n        pass\n"
    )
    module = types.ModuleType("data_job")
    module.__file__ = str(module_path)
    sys.modules["data_job"] = module
    try:
        exec(compile(module_path.read_text(), str(module_path), "exec"), module.__dict__)
        job = module.__dict__["DataJob"]()
        assert job.load_yaml("sites.yaml") == {"sites": [{"name": "ams1", "racks": 0}]}
        assert job.load_json("roles.json") == {"roles": ["leaf", "spine"]}
        with pytest.raises(FileNotFoundError):
            job.load_json("absent.json")
    finally:
        del sys.modules["data_job"]


@pytest.mark.parametrize(
    ("store", "data"),
    [
        ("sqlite:///jobplane.sqlite3", "sqlite:///jobplane-data.sqlite3"),
        ("sqlite:////var/lib/jp/results.db", "sqlite:////var/lib/jp/results-data.db"),
        ("postgresql+psycopg://jp:secret@db/jobplane", "postgresql+psycopg://jp:secret@db/jobplane"),
    ],
)
def test_job_data_database_defaults_to_a_sibling_file_for_sqlite(store: str, data: str) -> None:
    assert Settings(database_url=store).effective_data_database_url == data
    explicit = Settings(database_url=store, data_database_url="sqlite:///other.db")
    assert explicit.effective_data_database_url == "sqlite:///other.db"


def test_the_same_sqlite_file_for_results_and_job_data_is_refused() -> None:
    with pytest.raises(ValueError, match="must not be the SQLite file"):
        Settings(database_url="sqlite:///a.db", data_database_url="sqlite:///a.db")

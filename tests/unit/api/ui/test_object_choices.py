"""An ObjectVar's choices in the run form, read from a job-data database the API is given."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from jobplane import Job, MultiObjectVar, ObjectVar
from jobplane_api.settings import ApiSettings
from jobplane_api.ui.object_choices import MAX_CHOICES, DataChoices
from tests.ui_support import UiWorld, csrf_of, job_definition
from tests.unit.api.ui.test_auth import sign_in
from tests.unit.jobs.test_variables import Base, Widget

PICK = "77777777-7777-4777-8777-777777777777"


class Pick(Job):
    widget = ObjectVar(model=Widget, display_field="name")
    reds = MultiObjectVar(model=Widget, display_field="name", query_params={"colour": "red"}, required=False)

    class Meta:
        has_sensitive_variables = False

    def run(self, **data: object) -> None:
        pass


@pytest.fixture
def data_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'data.sqlite3'}"
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all(
            [
                Widget(id=1, name="bolt", colour="red"),
                Widget(id=2, name="anchor", colour="blue"),
                Widget(id=3, name="cog", colour="red"),
            ]
        )
        session.commit()
    engine.dispose()
    return url


@pytest.fixture
def client(tmp_path: Path, data_url: str) -> Iterator[tuple[TestClient, UiWorld]]:
    world = UiWorld(tmp_path, [job_definition(Pick, uid=PICK)], ui_data_database_url=data_url)
    world.user("runner", actions=["view", "run"])
    with TestClient(world.app(), follow_redirects=False) as client:
        sign_in(client, "runner")
        yield client, world


def test_the_rows_are_offered_by_their_display_field_and_fixed_filters(
    client: tuple[TestClient, UiWorld],
) -> None:
    http, world = client
    page = http.get(f"/jobs/{PICK}/run/").text
    assert '<select id="widget" name="widget" required>' in page
    assert page.index(">anchor<") < page.index(">bolt<") < page.index(">cog<")
    reds = page[page.index('id="reds"') :]
    reds = reds[: reds.index("</select>")]
    assert ">bolt<" in reds
    assert ">cog<" in reds
    assert ">anchor<" not in reds  # query_params={"colour": "red"}
    answer = http.post(
        f"/jobs/{PICK}/run/",
        data={"widget": "2", "reds": ["1", "3"], "csrf_token": csrf_of(page)},
    )
    assert answer.status_code == 303, answer.text
    (run,) = world.runs()
    assert run["spec"]["data"] == {"widget": "2", "reds": ["1", "3"]}


def test_no_choices_without_the_table_in_the_schema_or_for_the_store(tmp_path: Path, data_url: str) -> None:
    choices = DataChoices(create_engine(data_url))
    prop = Pick.json_schema()["properties"]["widget"]
    assert choices(prop) == [("2", "anchor"), ("1", "bolt"), ("3", "cog")]
    assert choices({k: v for k, v in prop.items() if k != "x-jobplane-table"}) is None
    assert choices({**prop, "x-jobplane-table": {"name": "users_user", "schema": None, "key": "id"}}) is None
    assert (
        choices({**prop, "x-jobplane-table": {"name": "no_such_table", "schema": None, "key": "id"}}) is None
    )


def test_too_many_rows_fall_back_to_the_text_field(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'many.sqlite3'}"
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all(Widget(id=n, name=f"w{n}", colour="red") for n in range(MAX_CHOICES + 1))
        session.commit()
    assert DataChoices(engine)(Pick.json_schema()["properties"]["widget"]) is None


def test_the_data_database_may_not_be_the_results_store() -> None:
    with pytest.raises(ValueError, match="must not be the results store"):
        ApiSettings(kubernetes=False, database_url="sqlite:///x.db", ui_data_database_url="sqlite:///x.db")

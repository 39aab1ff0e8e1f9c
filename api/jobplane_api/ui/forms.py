"""The run form: fields read from a job's JSON Schema, and a submitted form turned back into job data.

The form shows what the schema says (type, bounds, choices, default); the data it produces goes through
the API's run service, so the one validator (jobplane.schema.validate_data) decides what is accepted and
its messages are shown next to their fields.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.datastructures import FormData, UploadFile

from jobplane_api.services.runs import UploadedFile
from jobplane_api.services.schedules import DEFAULT_TIME_ZONE, IMMEDIATELY, ScheduleInput

__all__ = [
    "QUEUE_FIELD",
    "SCHEDULE_FIELDS",
    "SCHEDULE_INTERVALS",
    "FormField",
    "ParsedForm",
    "fields_of",
    "form_values",
    "parse_run_form",
    "schedule_of_form",
    "schedule_values",
]

QUEUE_FIELD = "_task_queue"
# The schedule's controls, named as the API's multipart run takes them (its errors then name them too).
SCHEDULE_FIELDS = {
    "interval": "_schedule_interval",
    "name": "_schedule_name",
    "start_time": "_schedule_start_time",
    "crontab": "_schedule_crontab",
    "time_zone": "_schedule_time_zone",
}
# Nautobot's job form choices (JobExecutionType), in its order.
SCHEDULE_INTERVALS: tuple[tuple[str, str], ...] = (
    (IMMEDIATELY, "Immediately"),
    ("future", "Once in the future"),
    ("hourly", "Recurring hourly"),
    ("daily", "Recurring daily"),
    ("weekly", "Recurring weekly"),
    ("custom", "Recurring custom (crontab)"),
)
NOT_JSON = "Enter valid JSON."


@dataclass(frozen=True)
class FormField:
    """One variable of the job as its form control needs it."""

    name: str
    type: str
    label: str
    help: str
    required: bool
    schema: Mapping[str, Any]
    default: Any = None

    @property
    def choices(self) -> list[tuple[Any, str]]:
        return [(value, str(label)) for value, label in self.schema.get("x-jobplane-choices") or []]

    @property
    def min_length(self) -> int | None:
        return self.schema.get("minLength")

    @property
    def max_length(self) -> int | None:
        return self.schema.get("maxLength")

    @property
    def pattern(self) -> str | None:
        return self.schema.get("pattern")

    @property
    def minimum(self) -> int | None:
        return self.schema.get("minimum")

    @property
    def maximum(self) -> int | None:
        return self.schema.get("maximum")

    @property
    def prefix_length(self) -> Mapping[str, int]:
        bounds: Mapping[str, int] = self.schema.get("x-jobplane-prefix-length") or {}
        return bounds

    @property
    def model(self) -> str:
        return str(self.schema.get("x-jobplane-model") or "").rsplit(".", 1)[-1]


def fields_of(schema: Mapping[str, Any]) -> list[FormField]:
    """The form's fields in the job's order."""
    properties: Mapping[str, Any] = schema.get("properties") or {}
    order = schema.get("x-jobplane-order") or list(properties)
    required = set(schema.get("required") or ())
    fields = []
    for name in order:
        prop = properties.get(name) or {}
        fields.append(
            FormField(
                name=name,
                type=str(prop.get("x-jobplane-type") or "StringVar"),
                label=str(prop.get("title") or name),
                help=str(prop.get("description") or ""),
                required=name in required,
                schema=prop,
                default=prop.get("default"),
            )
        )
    return fields


@dataclass
class ParsedForm:
    """A submitted run form: the job data, its files, the queue, errors found before validation, and the
    submitted text of every field (to fill the form again when it comes back with errors)."""

    data: dict[str, Any] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)
    queue: str | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)
    submitted: dict[str, Any] = field(default_factory=dict)


def _choice(value: str, choices: list[tuple[Any, str]]) -> Any:
    """The choice whose value this form text is (choices may be numbers); the text itself otherwise, for
    the validator to refuse."""
    for candidate, _ in choices:
        if str(candidate) == value or (isinstance(candidate, bool) and str(candidate).lower() == value):
            return candidate
    return value


def _object_key(value: str) -> Any:
    """An ObjectVar's value: a primary key, or a JSON object of column filters."""
    text = value.strip()
    if text.startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    return text


async def parse_run_form(form: FormData, fields: list[FormField], *, max_size: int) -> ParsedForm:
    """Job data from the form; an empty optional control means "not given" (the default applies)."""
    parsed = ParsedForm()
    queue = form.get(QUEUE_FIELD)
    parsed.queue = queue if isinstance(queue, str) and queue else None
    for spec in fields:
        name, kind = spec.name, spec.type
        texts = [value for value in form.getlist(name) if isinstance(value, str)]
        text = texts[-1] if texts else ""
        if kind in ("BooleanVar", "DryRunVar"):
            parsed.data[name] = text.lower() in ("on", "true", "1", "yes")
            parsed.submitted[name] = parsed.data[name]
        elif kind == "FileVar":
            upload = next((value for value in form.getlist(name) if isinstance(value, UploadFile)), None)
            if upload is not None and upload.filename:
                content = await upload.read()
                if len(content) > max_size:
                    parsed.errors[name] = [f"The file is above the limit of {max_size} bytes."]
                else:
                    parsed.files[name] = UploadedFile(name=upload.filename, content=content)
        elif kind == "MultiChoiceVar":
            values = [value for value in texts if value != ""]
            parsed.submitted[name] = values
            if values:
                parsed.data[name] = [_choice(value, spec.choices) for value in values]
        elif kind == "MultiObjectVar":
            values = [value for value in texts if value.strip()]
            if len(values) == 1 and "," in values[0] and not values[0].lstrip().startswith("{"):
                values = [part.strip() for part in values[0].split(",") if part.strip()]
            parsed.submitted[name] = values
            if values:
                parsed.data[name] = [_object_key(value) for value in values]
        else:
            parsed.submitted[name] = text
            if (text.strip() == "" and kind != "TextVar") or text == "":
                continue  # not given: the default applies, or the validator says it is required
            if kind == "IntegerVar":
                try:
                    parsed.data[name] = int(text.strip())
                except ValueError:
                    parsed.data[name] = text  # the validator says "Enter a whole number."
            elif kind == "ChoiceVar":
                parsed.data[name] = _choice(text, spec.choices)
            elif kind == "JSONVar":
                try:
                    parsed.data[name] = json.loads(text)
                except json.JSONDecodeError:
                    parsed.errors[name] = [NOT_JSON]
            elif kind == "ObjectVar":
                parsed.data[name] = _object_key(text)
            elif kind in ("IPAddressVar", "IPAddressWithMaskVar", "IPNetworkVar"):
                parsed.data[name] = text.strip()
            elif kind == "TextVar":
                parsed.data[name] = text.replace("\r\n", "\n")  # browsers send a textarea's lines with CRLF
            else:
                parsed.data[name] = text
    return parsed


def form_values(fields: list[FormField], data: Mapping[str, Any]) -> dict[str, Any]:
    """A run's data as the form shows it (a re-run pre-filled): text for text controls, lists for
    multiple ones, booleans for switches. A FileVar cannot be pre-filled: the file is chosen again."""
    values: dict[str, Any] = {}
    for spec in fields:
        value = data.get(spec.name)
        if spec.type in ("BooleanVar", "DryRunVar"):
            values[spec.name] = bool(value)
        elif spec.type == "FileVar" or value is None:
            continue
        elif spec.type == "JSONVar":
            values[spec.name] = json.dumps(value, indent=2)
        elif spec.type in ("MultiChoiceVar", "MultiObjectVar"):
            items = value if isinstance(value, list) else [value]
            values[spec.name] = [json.dumps(item) if isinstance(item, dict) else str(item) for item in items]
        elif isinstance(value, dict):
            values[spec.name] = json.dumps(value)
        else:
            values[spec.name] = str(value)
    return values


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _zoned_start(text: str, time_zone: str) -> str:
    """A start time as the service reads it: a browser's datetime-local has no offset, so it is a time of
    the schedule's own time zone (not UTC); a text that is not a date-time stays for the service to refuse."""
    if not text:
        return text
    try:
        moment = datetime.fromisoformat(text)
        zone = ZoneInfo(time_zone)
    except (ValueError, ZoneInfoNotFoundError, OSError):
        return text
    if moment.tzinfo is not None:
        return text
    return moment.replace(tzinfo=zone).isoformat()


def schedule_of_form(form: FormData) -> ScheduleInput | None:
    """The run form's schedule as the API's multipart run gives it to the run service; None: run now."""
    interval = _text(form, SCHEDULE_FIELDS["interval"]) or IMMEDIATELY
    if interval == IMMEDIATELY:
        return None
    time_zone = _text(form, SCHEDULE_FIELDS["time_zone"]) or DEFAULT_TIME_ZONE
    return ScheduleInput(
        interval=interval,
        name=_text(form, SCHEDULE_FIELDS["name"]) or None,
        start_time=_zoned_start(_text(form, SCHEDULE_FIELDS["start_time"]), time_zone),
        crontab=_text(form, SCHEDULE_FIELDS["crontab"]) or None,
        time_zone=time_zone,
        form=True,
    )


def schedule_values(form: FormData) -> dict[str, str]:
    """The schedule's controls as submitted, to fill the form again when it comes back with errors."""
    return {name: _text(form, name) for name in SCHEDULE_FIELDS.values()}

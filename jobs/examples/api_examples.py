"""The jobs of the REST API examples in Nautobot's documentation: inputs by name, and a file upload."""

import time

from jobplane import FileVar, IntegerVar, Job, StringVar, register_jobs

name = "API examples"


class ExampleVariables(Job):
    """Echo a string and an integer: the job of the documentation's "run by name with inputs" example."""

    string_variable = StringVar(description="Any text.")
    integer_variable = IntegerVar(min_value=0, description="A whole number.")

    class Meta:
        name = "Example variables"
        description = "Takes a string and an integer and returns them."
        has_sensitive_variables = False

    def run(self, *, string_variable: str, integer_variable: int) -> dict[str, object]:
        self.logger.info("string_variable=%s integer_variable=%d", string_variable, integer_variable)
        return {"string_variable": string_variable, "integer_variable": integer_variable}


class ExampleFile(Job):
    """Read an uploaded file and write a report: the documentation's multipart example."""

    interval = StringVar(description="Seconds between two lines of the report.")
    myfile = FileVar(description="A text file; each line is reported.")

    class Meta:
        name = "Example file"
        description = "Reads an uploaded text file and writes a report of its lines."
        has_sensitive_variables = False

    def run(self, *, interval: str, myfile) -> dict[str, object]:  # type: ignore[no-untyped-def]
        lines = myfile.read().decode("utf-8").splitlines()
        pause = float(interval) / 100  # hundredths: the example's interval is "3"
        report = []
        for number, line in enumerate(lines, start=1):
            self.logger.info("line %d: %s", number, line, extra={"grouping": "lines"})
            report.append(f"{number}: {line}")
            time.sleep(pause)
        self.create_file("report.txt", "\n".join(report) + "\n")
        self.logger.success("read %d lines", len(lines))
        return {"lines": len(lines)}


class SlowCounter(Job):
    """Count slowly, one log line per step: its logs can be read while it runs."""

    steps = IntegerVar(min_value=1, max_value=600, default=10, description="How many lines to log.")
    pause = IntegerVar(min_value=0, max_value=10, default=1, description="Seconds between two lines.")

    class Meta:
        name = "Slow counter"
        description = "Logs one line per step, pausing between steps."
        has_sensitive_variables = False

    def run(self, *, steps: int, pause: int) -> dict[str, int]:
        for step in range(1, steps + 1):
            self.logger.info("step %d of %d", step, steps, extra={"grouping": "count"})
            time.sleep(pause)
        return {"steps": steps}


register_jobs(ExampleVariables, ExampleFile, SlowCounter)

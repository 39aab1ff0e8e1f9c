"""The jobs Nautobot's documentation names: ``example.MyJobWithNoVars`` (runjob) and one with variables."""

import json
import time

from jobplane import IntegerVar, Job, StringVar, register_jobs

name = "Getting started"


class MyJobWithNoVars(Job):
    """Take nothing and do nothing but say so: the job of the documentation's runjob example."""

    class Meta:
        name = "My Job With No Vars"
        description = "Takes no input, logs one line and returns nothing."
        has_sensitive_variables = False

    def run(self) -> None:
        self.logger.info("Nothing to do.")


class MyJobWithVars(Job):
    """Log the inputs one line at a time, write them to a file and return them.

    ``pause`` spaces the lines out, so that they can be watched arriving while the run goes on.
    """

    string_variable = StringVar(max_length=100, description="Any text.")
    integer_variable = IntegerVar(min_value=0, description="A whole number.")
    pause = IntegerVar(
        min_value=0, max_value=60, default=0, description="Seconds to wait after each line, before the end."
    )

    class Meta:
        name = "My Job With Vars"
        description = "Logs its inputs, writes them to inputs.json and returns them."
        has_sensitive_variables = False

    def run(self, *, string_variable: str, integer_variable: int, pause: int) -> dict[str, object]:
        inputs: dict[str, object] = {"string_variable": string_variable, "integer_variable": integer_variable}
        self.logger.info("string_variable=%s", string_variable)
        time.sleep(pause)
        self.logger.info("integer_variable=%d", integer_variable)
        time.sleep(pause)
        self.create_file("inputs.json", json.dumps(inputs, indent=2) + "\n")
        self.logger.success("wrote inputs.json")
        return inputs


register_jobs(MyJobWithNoVars, MyJobWithVars)

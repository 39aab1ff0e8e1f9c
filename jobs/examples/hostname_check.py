"""CheckHostnames: shows fail(): report every bad name, keep going, and end the run as FAILURE."""

from __future__ import annotations

import re
from typing import Any

from jobplane import Job, TextVar, register_jobs

name = "Getting started"

# <site><digit>-<role>-<two digits>, e.g. ams1-rtr-01.
HOSTNAME_PATTERN = re.compile(r"^[a-z]{3}\d-(rtr|sw|fw)-\d{2}$")


class CheckHostnames(Job):
    """Check host names against the naming convention."""

    hostnames = TextVar(description="One host name per line, e.g. ams1-rtr-01.")

    class Meta:
        name = "Check host names"
        description = """
            Checks each host name against the convention `<site><n>-<rtr|sw|fw>-<nn>`. A bad name is
            logged as a failure and the check goes on; the run fails at the end if any name was bad.
        """
        has_sensitive_variables = False
        read_only = True

    def run(self, *, hostnames: str) -> dict[str, Any]:
        names = [line.strip() for line in hostnames.splitlines() if line.strip()]
        bad = []
        for hostname in names:
            if HOSTNAME_PATTERN.match(hostname):
                self.logger.success("%s follows the convention", hostname)
            else:
                bad.append(hostname)
                self.logger.failure("%s does not follow the convention", hostname)
        if bad:
            # Unlike raising, fail() lets the job finish its work and keep its return value.
            self.fail("%d of %d host names break the convention", len(bad), len(names))
        return {"checked": len(names), "bad": bad}


register_jobs(CheckHostnames)

"""A job with sensitive variables: its inputs are never stored, logged or put in a pod spec."""

from __future__ import annotations

from jobplane import Job, StringVar, register_jobs

name = "Getting started"


class DeviceLogin(Job):
    """Check credentials against a device (simulated): the password only ever reaches run()."""

    username = StringVar(min_length=1, max_length=64)
    password = StringVar(min_length=8, description="Never stored: the job has sensitive variables.")

    class Meta:
        name = "Device login check"
        description = "Shows has_sensitive_variables (the default): inputs reach the job and nothing else."

    def run(self, *, username: str, password: str) -> dict[str, object]:
        # A real job would open a session with these; the example only proves it received them.
        self.logger.info("Logging in as %s", username)
        strong = any(ch.isdigit() for ch in password) and any(ch.isalpha() for ch in password)
        if not strong:
            self.fail("The password for %s has no mix of letters and digits", username)
        self.logger.success("Credentials for %s accepted", username)
        return {"user": username, "password_length": len(password)}


register_jobs(DeviceLogin)

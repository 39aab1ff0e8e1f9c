"""The smallest useful job: greets someone, logs at several levels and returns a value."""

from jobplane import Job, StringVar, register_jobs

name = "Getting started"


class HelloWorld(Job):
    """Say hello."""

    who = StringVar(label="Who to greet", default="world", max_length=50)

    class Meta:
        name = "Hello world"
        description = "Greets someone: the job the README runs first."
        has_sensitive_variables = False

    def run(self, *, who: str) -> dict[str, str]:
        self.logger.info("Preparing a greeting for %s", who)
        greeting = f"Hello, {who}!"
        self.logger.success(greeting)
        return {"greeting": greeting}


register_jobs(HelloWorld)

"""LifecycleHooks: shows the hooks around run(): before_start, on_success or on_failure, after_return."""

from __future__ import annotations

from typing import Any

from jobplane import BooleanVar, Job, register_jobs

name = "Getting started"


class LifecycleHooks(Job):
    """Log each lifecycle hook as it is called."""

    raise_error = BooleanVar(description="Make run() raise, to see on_failure instead of on_success.")

    class Meta:
        name = "Lifecycle hooks"
        description = """
            Logs from every hook, in the order jobplane calls them (Nautobot's order):
            before_start, run, then on_success or on_failure, and after_return whatever happened.
        """
        has_sensitive_variables = False

    def before_start(self, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        # Each log line's grouping is the name of the function that logged it: before_start here.
        self.logger.info("Starting job result %s with %s", task_id, sorted(kwargs))

    def run(self, *, raise_error: bool) -> dict[str, Any]:
        self.logger.info("Doing the work")
        if raise_error:
            raise RuntimeError("raise_error was set")
        return {"work": "done"}

    def on_success(self, retval: Any, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.logger.success("run() returned %s", retval)

    def on_failure(
        self, exc: Any, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any], einfo: Any
    ) -> None:
        # exc is the exception (einfo has its traceback), or run()'s return value after fail().
        self.logger.warning("The run failed: %r (traceback %s)", exc, "kept" if einfo else "none")

    def after_return(
        self,
        status: str,
        retval: Any,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: Any,
    ) -> None:
        self.logger.info("Finished with status %s", status)


register_jobs(LifecycleHooks)

"""The results store: JobResult, JobLogEntry and FileProxy in SQLite or Postgres."""

"""Running jobs: the runner, local runs, a job pod's main process and its reports, Git checkouts."""

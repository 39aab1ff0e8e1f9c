"""The Jobplane operator: reconciles JobRuns into batch/v1 Jobs on the node pools of their queues."""

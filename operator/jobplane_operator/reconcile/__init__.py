"""Pure reconcile logic: decide what should exist and what happened, without talking to Kubernetes."""

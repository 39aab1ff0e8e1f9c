"""Jobplane's REST API: Nautobot-compatible jobs endpoints, identity, and the results store in Postgres."""

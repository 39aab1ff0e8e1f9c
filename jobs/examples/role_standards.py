"""RoleStandards: shows load_yaml() and load_json(): reads data files that sit next to the job."""

from __future__ import annotations

from typing import Any

from jobplane import ChoiceVar, Job, register_jobs

name = "Getting started"

STANDARDS_FILE = "role_standards.yaml"
VLANS_FILE = "role_standards_vlans.json"


class RoleStandards(Job):
    """Look up the configuration standards of a device role."""

    role = ChoiceVar(
        choices=(("router", "Router"), ("switch", "Switch"), ("firewall", "Firewall")), default="switch"
    )

    class Meta:
        name = "Show role standards"
        description = f"""
            Combines the role's settings from `{STANDARDS_FILE}` with its VLANs from `{VLANS_FILE}`,
            both shipped next to this job's source file.
        """
        has_sensitive_variables = False
        read_only = True

    def run(self, *, role: str) -> dict[str, Any]:
        standards = self.load_yaml(STANDARDS_FILE)
        vlan_plan = self.load_json(VLANS_FILE)
        settings = {**standards["defaults"], **standards["roles"].get(role, {})}
        vlans = [vlan for vlan in vlan_plan["vlans"] if role in vlan["roles"]]
        self.logger.info("Loaded %s (version %s) and %s", STANDARDS_FILE, standards["version"], VLANS_FILE)
        for key, value in sorted(settings.items()):
            self.logger.info("%s: %s = %s", role, key, value)
        self.logger.success("%s: %d settings, %d VLANs", role, len(settings), len(vlans))
        return {"role": role, "settings": settings, "vlans": [vlan["id"] for vlan in vlans]}


register_jobs(RoleStandards)

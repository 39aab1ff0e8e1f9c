"""Discovery: JOBS_ROOT modules by file name, registration required, broken modules reported, not fatal."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobplane.discovery import discover_jobs, find_job, jobs_root_modules
from jobplane.job import clear_registry
from jobplane.settings import Settings
from tests.builders import write_module

GOOD = """
    from jobplane import Job, StringVar, register_jobs

    name = "Network checks"

    class Ping(Job):
        target = StringVar()

        def run(self, *, target):
            return target

    class NotRegistered(Job):
        def run(self):
            pass

    register_jobs(Ping)
"""


@pytest.fixture
def jobs_root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "jobs_root"
    before = set(sys.modules)
    yield root
    for name in set(sys.modules) - before:
        module = sys.modules[name]
        if str(getattr(module, "__file__", "") or "").startswith(str(root)):
            del sys.modules[name]
            clear_registry(name)
    if str(root.resolve()) in sys.path:
        sys.path.remove(str(root.resolve()))


def test_modules_are_found_by_file_name_and_private_ones_skipped(jobs_root: Path) -> None:
    write_module(jobs_root, "disc_alpha", GOOD)
    write_module(jobs_root, "_private", "raise SystemExit('must not be imported')")
    (jobs_root / "disc_pkg").mkdir()
    (jobs_root / "disc_pkg" / "__init__.py").write_text("")
    (jobs_root / "not_a_package").mkdir()
    assert jobs_root_modules(jobs_root) == ["disc_alpha", "disc_pkg"]


def test_only_registered_classes_are_jobs_and_class_path_is_module_dot_class(jobs_root: Path) -> None:
    write_module(jobs_root, "disc_net", GOOD)
    discovery = discover_jobs(Settings(jobs_root=jobs_root))
    assert "disc_net.Ping" in discovery.jobs
    assert "disc_net.NotRegistered" not in discovery.jobs
    assert discovery.jobs["disc_net.Ping"].properties().grouping == "Network checks"
    assert discovery.errors == {}


def test_broken_module_is_reported_and_does_not_hide_others(jobs_root: Path) -> None:
    write_module(jobs_root, "disc_ok", GOOD)
    write_module(jobs_root, "disc_syntax", "def broken(:\n    pass\n")
    write_module(jobs_root, "disc_raises", "import json\nraise RuntimeError('no inventory configured')\n")
    write_module(
        jobs_root,
        "disc_badmeta",
        """
        from jobplane import Job, register_jobs

        class Bad(Job):
            class Meta:
                time_limit = "ten"

            def run(self):
                pass

        register_jobs(Bad)
        """,
    )
    discovery = discover_jobs(Settings(jobs_root=jobs_root))
    assert "disc_ok.Ping" in discovery.jobs
    assert set(discovery.errors) == {"disc_syntax", "disc_raises", "disc_badmeta"}
    assert discovery.errors["disc_syntax"].startswith("SyntaxError:")
    assert "line 1" in discovery.errors["disc_syntax"]
    assert "RuntimeError: no inventory configured" in discovery.errors["disc_raises"]
    assert "Meta.time_limit must be int or float" in discovery.errors["disc_badmeta"]


def test_a_module_shadowed_by_the_standard_library_is_reported(jobs_root: Path) -> None:
    write_module(jobs_root, "json", GOOD)
    discovery = discover_jobs(Settings(jobs_root=jobs_root))
    assert "shadowed by" in discovery.errors["json"]


def test_missing_jobs_root_is_not_an_error(tmp_path: Path) -> None:
    discovery = discover_jobs(Settings(jobs_root=tmp_path / "absent"))
    assert discovery.errors == {}


def test_reload_picks_up_changed_code(jobs_root: Path) -> None:
    write_module(jobs_root, "disc_reload", GOOD)
    settings = Settings(jobs_root=jobs_root)
    assert "disc_reload.Ping" in discover_jobs(settings).jobs
    write_module(jobs_root, "disc_reload", GOOD.replace("Ping", "PingAgain"))
    jobs = discover_jobs(settings, reload=True).jobs
    assert "disc_reload.PingAgain" in jobs
    assert "disc_reload.Ping" not in jobs


def test_find_job_imports_one_module_and_reports_unknown(jobs_root: Path) -> None:
    write_module(jobs_root, "disc_find", GOOD)
    write_module(jobs_root, "disc_other", "raise RuntimeError('should not be imported for a known job')")
    settings = Settings(jobs_root=jobs_root)
    job, discovery = find_job("disc_find.Ping", settings)
    assert job is not None
    assert discovery is None
    assert "disc_other" not in sys.modules
    missing, discovery = find_job("disc_find.Nope", settings)
    assert missing is None
    assert discovery is not None
    assert "disc_other" in discovery.errors


def test_installed_packages_register_jobs_through_the_entry_point_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    write_module(site / "acme_jobs", "__init__", GOOD)
    dist_info = site / "acme_jobs-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-jobs\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text("[jobplane.jobs]\nacme = acme_jobs\n")
    monkeypatch.syspath_prepend(str(site))
    try:
        discovery = discover_jobs(Settings(jobs_root=tmp_path / "no-root"))
        assert "acme_jobs.Ping" in discovery.jobs
        assert discovery.errors == {}
    finally:
        sys.modules.pop("acme_jobs", None)
        clear_registry("acme_jobs")


CLASHING = """
    from jobplane import Job, register_jobs

    name = "{grouping}"

    class Sync(Job):
        class Meta:
            name = "Sync devices"

        def run(self):
            pass

    register_jobs(Sync)
"""


def test_two_jobs_of_one_name_are_a_registration_error_naming_both(jobs_root: Path) -> None:
    # As in Nautobot, a job name is unique among all jobs, whatever their grouping.
    write_module(jobs_root, "disc_clash_a", CLASHING.format(grouping="Network"))
    write_module(jobs_root, "disc_clash_b", CLASHING.format(grouping="Inventory"))
    write_module(jobs_root, "disc_clash_c", GOOD)
    discovery = discover_jobs(Settings(jobs_root=jobs_root))
    assert {"disc_clash_a.Sync", "disc_clash_b.Sync", "disc_clash_c.Ping"} <= set(discovery.jobs)
    assert sorted(discovery.conflicts) == ["disc_clash_a.Sync", "disc_clash_b.Sync"]
    assert discovery.conflicts["disc_clash_a.Sync"] == (
        "NameConflict: job name 'Sync devices' of disc_clash_a.Sync (grouping 'Network') is also the name "
        "of disc_clash_b.Sync (grouping 'Inventory'); give one of them another Meta.name"
    )
    assert "of disc_clash_a.Sync (grouping 'Network')" in discovery.conflicts["disc_clash_b.Sync"]
    assert discovery.errors == {}

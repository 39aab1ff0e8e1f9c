# One image for every jobplane command: `jobplane run-pod`, `jobplane operator`, `jobplane api`, `jobplane sync-jobs`.
#
# Dependencies (and hatchling, the build backend) come from the wheelhouse in wheels/ first. With
# --build-arg OFFLINE=1 they come from it only (pip --no-index), for builds without network access;
# otherwise what wheels/ lacks is fetched from PyPI. wheels/ must exist, even if empty.
#   mkdir -p wheels && podman build --build-arg BASE=python:3.11-slim -t jobplane .
#
# The final image is FROM scratch: a copy of the base's filesystem with what no jobplane command uses
# taken out (rootfs stage), plus the venv (builder stage). Deleting files in a layer on top of the base
# would not shrink the image, as the base's layers would still hold them.
ARG BASE=python:3.11-slim

# --- builder: the jobplane wheel from source, then a venv with it and its dependencies ----------------
FROM ${BASE} AS builder
ARG OFFLINE=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY wheels/ /wheels/
# A venv of its own for the build tools, so nothing of them reaches the runtime venv.
RUN python3 -m venv /opt/build \
 && /opt/build/bin/pip install --find-links /wheels ${OFFLINE:+--no-index} "hatchling>=1.27"
COPY pyproject.toml README.md ./
COPY jobs/jobplane/ jobs/jobplane/
COPY runtime/ runtime/
COPY store/ store/
COPY crds/ crds/
COPY operator/ operator/
COPY api/ api/
COPY docker/slim_venv.py /src/docker/
# --no-build-isolation: hatchling comes from the build venv above, not from an index at build time.
# The image runs every command, so it installs the wheel with the extra `all` (the job SDK alone needs
# none of the servers' dependencies; see pyproject.toml). The runtime venv gets no pip or setuptools: the
# build venv's pip installs into it (--python), without bytecode, which docker/slim_venv.py writes once it
# has removed what no jobplane command loads and zipped the pure-Python packages.
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /dist . \
 && python3 -m venv --without-pip /opt/jobplane/venv \
 && set -- /dist/jobplane-*.whl \
 && /opt/build/bin/pip --python /opt/jobplane/venv/bin/python install --no-compile \
        --find-links /wheels ${OFFLINE:+--no-index} "$1[all]" \
 && /opt/jobplane/venv/bin/python docker/slim_venv.py \
        "$(/opt/jobplane/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"

# --- rootfs: the base with git, ssh and pgrep, without what no jobplane command runs -------------------
FROM ${BASE} AS rootfs
# git and ssh fetch jobs from Git repositories (sync-repo, run-pod); pgrep (procps) lets a timed-out git
# be killed with its children. Installed only when the base lacks them: the test base image has them,
# and its builds run without network access.
# hadolint ignore=DL3008
RUN (command -v git && command -v ssh && command -v pgrep) >/dev/null \
 || (apt-get update \
     && apt-get install -y --no-install-recommends git openssh-client procps \
     && rm -rf /var/lib/apt/lists/*)
COPY docker/slim_rootfs.sh /tmp/
RUN sh /tmp/slim_rootfs.sh

# --- runtime ------------------------------------------------------------------------------------------
FROM scratch
# The folder of job modules to bake in, relative to the build context (Nautobot's JOBS_ROOT).
ARG JOBS_DIR=jobs/examples
ENV PATH=/opt/jobplane/venv/bin:/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    JOBPLANE_JOBS_ROOT=/opt/jobplane/jobs \
    JOBPLANE_DATABASE_URL=sqlite:////tmp/jobplane.sqlite3
# The whole file system on purpose: it is the base, slimmed (DL3067 warns against copying one).
# hadolint ignore=DL3067
COPY --from=rootfs / /
COPY --from=builder /opt/jobplane/venv /opt/jobplane/venv
COPY ${JOBS_DIR}/ /opt/jobplane/jobs/
# Compiled as root at build time: at run time the non-root user cannot write next to the sources.
RUN python3 -m compileall -q /opt/jobplane/jobs \
 && (getent passwd 10001 >/dev/null || echo "jobplane:x:10001:10001:jobplane:/tmp:/usr/sbin/nologin" >> /etc/passwd) \
 && (getent group 10001 >/dev/null || echo "jobplane:x:10001:" >> /etc/group)
WORKDIR /tmp
USER 10001:10001
ENTRYPOINT ["jobplane"]
CMD ["--help"]

#!/bin/sh
# Takes out of a Debian-based image what no jobplane command runs, for the Dockerfile's rootfs stage.
#
# Kept: Python and its standard library, git (https and ssh), ssh, pgrep/pkill (procps), CA certificates,
# sh/bash/coreutils (probes run `cat`; GIT_SSH_COMMAND goes through sh), tar (`kubectl cp`), dpkg's
# database of what is installed.
# Out:
# - installers: apt, dpkg's programs (its database of what is installed stays, for image scanners), and
#   pip with the wheels ensurepip would install: the image installs nothing;
# - Perl: git uses it only for send-email, svn, cvs and archimport, which jobplane never calls;
# - tools for administering a machine (users, logins, PAM, file systems, mounts, init, cron jobs, bug
#   reports), which a container has no use for;
# - documentation, manual pages, translations, glibc's converters for legacy character sets (Python
#   brings its own codecs), Python's test support and help() texts;
# - git's server side (daemon, http-backend, shell), its mail and http-push tools, and the second copy
#   of the git binary in git-core (a symlink to /usr/bin/git now, as its builtins are).
set -eu
export DEBIAN_FRONTEND=noninteractive

purge() {
    # Only what is installed: the base may lack some (python:3.11-slim has no Debian python packages).
    packages=$(dpkg-query -W -f '${Package}\n' "$@" 2>/dev/null || true)
    if [ -n "$packages" ]; then
        # shellcheck disable=SC2086 # one word per package
        dpkg --purge --force-depends --force-remove-essential $packages
    fi
}

purge 'perl' 'perl-base' 'perl-modules-*' 'libperl*' 'liberror-perl' 'apt' 'libapt-pkg*' \
    'python3-pip-whl' 'python3-setuptools-whl' 'python3*-venv' 'python3-distutils' 'python3-lib2to3' \
    'util-linux' 'util-linux-extra' 'mount' 'bsdutils' 'e2fsprogs' 'libext2fs2' 'libss2' 'logsave' \
    'login' 'passwd' 'libpam*' 'libsemanage*' 'libsepol*' 'libaudit*' 'adduser' 'debconf' 'libdebconfclient0' \
    'gpgv' 'debian-archive-keyring' 'sysvinit-utils' 'init-system-helpers' 'git-man' 'ncurses-bin' \
    'hostname' 'libgdbm*' 'libdb5.3' 'libsmartcols1' 'libblkid1' 'libmount1' 'libcap-ng0'
# Their removal scripts above use find, so these go last.
purge 'findutils' 'diffutils'

rm -rf /usr/share/doc/* /usr/share/man/* /usr/share/info/* /usr/share/locale/* /usr/share/lintian \
    /usr/lib/*-linux-gnu/gconv /usr/share/python-wheels \
    /usr/lib/python3*/ensurepip /usr/lib/python3*/test /usr/lib/python3*/pydoc_data \
    /usr/local/lib/python3*/ensurepip /usr/local/lib/python3*/test /usr/local/lib/python3*/site-packages/pip* \
    /usr/local/lib/python3*/site-packages/setuptools* /usr/local/lib/python3*/site-packages/wheel* \
    /usr/local/bin/pip* \
    /usr/lib/git-core/git-daemon /usr/lib/git-core/git-http-backend /usr/lib/git-core/git-http-push \
    /usr/lib/git-core/git-imap-send /usr/lib/git-core/git-shell /usr/lib/git-core/scalar \
    /usr/bin/git-shell /usr/bin/scalar /usr/share/gitweb \
    /etc/cron.daily/* /usr/share/bug \
    /var/cache/debconf /var/lib/apt /var/cache/apt /var/log/* /tmp/* /root/.cache
# dpkg last: everything above needs it.
rm -f /usr/bin/dpkg /usr/bin/dpkg-* /usr/sbin/dpkg-*
if [ -f /usr/lib/git-core/git ] && [ ! -L /usr/lib/git-core/git ] && [ -x /usr/bin/git ]; then
    ln -sf ../../bin/git /usr/lib/git-core/git
fi

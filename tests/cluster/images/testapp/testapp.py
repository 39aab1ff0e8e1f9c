"""Entry point of the e2e test image: proves its Python, its venv and the wheelhouse package all work."""

from __future__ import annotations

import os
import sys

# Installed from the host-built wheelhouse, so importing it proves the image build used the wheelhouse.
import six  # type: ignore[import-untyped]

print(f"hello from testapp uid={os.getuid()} python={sys.version.split()[0]} six={six.__version__}")

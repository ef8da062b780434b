"""Stand-in for the pip bootstrap script ansible-test downloads (get-pip, from ci-files.testing.ansible.com, a host
these machines cannot reach). ansible-test creates each sanity test's virtual environment without pip and runs this
script in it with the packages to install (``pip==24.2 --no-setuptools --no-wheel``); it runs pip from the pip wheel
beside it (downloaded from PyPI by tests/sanity/run.py) to install them. Copied to ~/.ansible/test/cache/.
"""

from __future__ import annotations

import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
WHEELS = sorted(glob.glob(os.path.join(HERE, "pip-*-py3-none-any.whl")))
if not WHEELS:
    sys.exit(f"no pip wheel beside {__file__}: run tests/sanity/run.py, which downloads it")
sys.path.insert(0, WHEELS[-1])

from pip._internal.cli.main import main  # noqa: E402

sys.exit(main(["install", *(a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel"))]))

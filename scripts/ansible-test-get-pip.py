# Stand-in for the pip bootstrap script that ansible-test downloads from a host this machine cannot reach.
# ansible-test runs it in a fresh venv with pip's install arguments (e.g. `pip==25.2 --no-setuptools`):
# install pip from Python's bundled wheel, then let that pip install the requested packages from the
# configured package index.
import ensurepip
import subprocess
import sys

GET_PIP_ONLY_FLAGS = {"--no-setuptools", "--no-wheel"}

ensurepip.bootstrap(upgrade=True)
arguments = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_FLAGS]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "--quiet", *arguments]))

"""Command-line tools run from a checkout (`python tools/NAME.py`); not part of the installed
library."""

"""``python -m mailpass``: the same as the ``mailpass`` command."""

from mailpass.cli import main

main()

"""``python -m metainspect`` runs the CLI."""

from metainspect.cli import main

main()

"""`python -m gongmo`: the command line."""

from gongmo.workflow.cli import main

main()

"""`python -m tody` runs the CLI."""

from tody.cli.main import main

main()

"""`python -m recognize`: the emotion-recognize command line."""

from recognize.cli import main

main()

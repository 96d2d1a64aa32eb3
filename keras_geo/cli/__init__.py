"""The `keras-geo` command line: one argparse subcommand per module."""

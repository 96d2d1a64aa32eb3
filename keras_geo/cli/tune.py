"""`keras-geo tune`: not implemented yet (placeholder, replaced by its owner)."""


def add_parser(subparsers):
    parser = subparsers.add_parser("tune", help="(not implemented yet)")
    parser.set_defaults(func=_not_implemented)


def _not_implemented(args):
    raise SystemExit("keras-geo tune: not implemented yet")

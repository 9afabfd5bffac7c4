"""The ``sealion`` command's parser and its ``params`` subcommand (choose parameters, say why).

Each subcommand is a ``add_<name>_command(commands)`` function that registers its parser and
sets ``run``. Higher layers add theirs through ``build_parser(extensions)``: the installed
``sealion`` command is :func:`experiments.cli.main`, which adds ``run`` and teaches ``params``
to read a run configuration.
"""

import argparse
import re
import sys

from .errors import SealionError


def parse_integer(text):
    """Parse an exact positive integer from "4096", "1e12", "2^40", "2**40" or "10_000".

    Raises:
        argparse.ArgumentTypeError: if ``text`` is not a whole number.
    """
    cleaned = text.strip().replace("_", "")
    power = re.fullmatch(r"(\d+)\s*(?:\^|\*\*)\s*(\d+)", cleaned)
    if power:
        return int(power.group(1)) ** int(power.group(2))
    scientific = re.fullmatch(r"(\d+)(?:\.(\d+))?[eE]\+?(\d+)", cleaned)
    if scientific:
        whole, fraction, exponent = scientific.group(1), scientific.group(2) or "", int(scientific.group(3))
        if len(fraction.rstrip("0")) > exponent:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
        return int((whole + fraction.ljust(exponent, "0"))[:len(whole) + exponent])
    if re.fullmatch(r"\d+", cleaned):
        return int(cleaned)
    raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (examples: 4096, 1e12, 2^40)")


def build_parser(extensions=()):
    """Return the ``sealion`` argument parser.

    Args:
        extensions: functions ``extend(commands)`` called with the subparsers after ``params``
            is registered; they add subcommands or change defaults (``commands.choices[name]``).
    """
    parser = argparse.ArgumentParser(prog="sealion", description="Neural networks on encrypted data.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_params_command(commands)
    for extend in extensions:
        extend(commands)
    return parser


def add_params_command(commands):
    """Register ``sealion params``: select parameters for a computation and explain them."""
    params = commands.add_parser(
        "params", help="choose encryption parameters and print why",
        description="Select the smallest secure BFV or CKKS parameters for a computation, "
                    "confirmed by a trial run, and print the reasons.")
    params.add_argument("config", nargs="?", metavar="CONFIG.yaml",
                        help="a run configuration: print the parameters `sealion run` would use "
                             "(trains or loads its model first); the options below are then ignored")
    params.add_argument("--scheme", choices=["bfv", "ckks"])
    params.add_argument("--depth", type=int,
                        help="BFV: ciphertext multiplications on the longest path; CKKS: rescaling "
                             "multiplications")
    params.add_argument("--security", type=int, default=128, choices=[128, 192, 256])
    params.add_argument("--max-value", type=parse_integer, help="BFV: bound on |value| (e.g. 1e12, 2^40)")
    params.add_argument("--linear-bits", type=float, help="BFV: log2 of the l1-norm of a layer's weights")
    params.add_argument("--noise-margin-bits", type=float, help="BFV: noise budget to keep (bits)")
    params.add_argument("--precision-bits", type=int, help="CKKS: fractional bits of precision")
    params.add_argument("--integer-bits", type=int, help="CKKS: log2 of the largest |value|")
    params.add_argument("--batch-size", type=int, help="samples per run (reports ciphertext groups)")
    params.add_argument("--no-trial", action="store_true", help="skip the confirming trial run")
    output = params.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the parameters as JSON")
    output.add_argument("--yaml", action="store_true", help="print the parameters as YAML")
    params.set_defaults(run=run_params, parser=params)


def run_params(args):
    """Select parameters from the command-line options and print them with the reasons."""
    from .selection import explain, select_parameters
    if args.config:
        args.parser.error("reading CONFIG.yaml needs the full package: run `sealion params CONFIG.yaml`.")
    if args.scheme is None or args.depth is None:
        args.parser.error("give --scheme and --depth (or a CONFIG.yaml run configuration).")
    options = {"max_value": args.max_value, "linear_bits": args.linear_bits,
               "noise_margin_bits": args.noise_margin_bits, "precision_bits": args.precision_bits,
               "integer_bits": args.integer_bits, "batch_size": args.batch_size}
    chosen = select_parameters(args.scheme, security=args.security, depth=args.depth,
                               trial=not args.no_trial,
                               **{key: value for key, value in options.items() if value is not None})
    if args.json:
        print(chosen.to_json())
    elif args.yaml:
        print(chosen.to_yaml(), end="")
    else:
        print(explain(chosen))
    return 0


def main(argv=None, extensions=()):
    """Parse ``argv`` and run the subcommand; returns the exit code (2 for a reported error)."""
    parser = build_parser(extensions)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except SealionError as error:
        print(f"sealion {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""The installed ``sealion`` command: ``params`` from primitives, plus experiment runs.

    sealion run CONFIG.yaml [--output DIR] [--overwrite] [--set section.key=value ...]
                            [--executor local|ray] [--address ADDRESS]
    sealion params CONFIG.yaml       # the parameters that run would use, and why
    sealion params --scheme bfv --depth 1 --max-value 1e12
"""

import sys

from primitives import cli as primitives_cli


def add_run_command(commands):
    """Register ``sealion run``: a whole experiment from one YAML file."""
    run = commands.add_parser(
        "run", help="run an experiment described by a YAML file",
        description="Train (or load) the model, prepare it for encryption, select parameters, "
                    "encrypt the evaluation set, run encrypted inference, decrypt, and write "
                    "results.json, results.md, the prepared model and the parameters.")
    run.add_argument("config", metavar="CONFIG.yaml", help="run configuration (see docs/configs.md)")
    run.add_argument("--output", metavar="DIR", help="results folder (default: the config's output.dir, "
                     "else runs/<name>); earlier results there go untouched unless --overwrite")
    run.add_argument("--overwrite", action="store_true", help="replace earlier results in DIR")
    run.add_argument("--executor", choices=["local", "ray"], default="local",
                     help="where the encrypted forward pass runs: this machine's process pool (default) "
                          "or Ray, (ciphertext group, CRT prime) tasks (needs pip install -e \".[ray]\")")
    run.add_argument("--address", metavar="ADDRESS", help="with --executor ray: the cluster to join "
                     "(auto, HOST:6379, ray://HOST:10001); default: start a local Ray instance")
    add_override_option(run)
    run.set_defaults(run=run_experiment)


def add_override_option(parser):
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one config value, e.g. --set training.epochs=1 (repeatable)")


def extend_params_command(commands):
    """Let ``sealion params`` read a run configuration."""
    params = commands.choices["params"]
    add_override_option(params)
    params.set_defaults(run=params_from_config_or_flags)


def run_experiment(args):
    from .config import load_config
    from heras import execution
    from .kinds import get_kind
    from .results import ResultCheckError
    config = load_config(args.config, args.overrides)
    kind = get_kind(config.kind)
    runner = kind.runner()
    options = {}
    if (args.executor != "local" or args.address) and not kind.takes_executor:
        raise SystemExit(f"sealion run: --executor/--address apply to encrypted inference runs; "
                         f"kind {kind.name!r} runs on this machine. Remove the option.")
    try:
        with execution.use(args.executor, args.address) as executor:
            if kind.takes_executor:
                options["executor"] = executor
            results = runner.run(config, output=args.output, overwrite=args.overwrite or None, **options)
    except ResultCheckError as failure:  # results written; say what broke, exit 1
        if failure.results is not None:
            print()
            print(runner.summary(failure.results)[0], end="")
        print(f"sealion run: error: {failure}", file=sys.stderr)
        return 1
    text, code = runner.summary(results)
    print()
    print(text, end="")
    return code


def params_from_config_or_flags(args):
    if not args.config:
        return primitives_cli.run_params(args)
    from primitives import explain
    from .config import load_config
    from .runner import prepare
    config = load_config(args.config, args.overrides)
    _, plan, _ = prepare(config, log=lambda line: print(line, file=sys.stderr), verbose=0)
    print(f"Run {config.name!r}: {config.model.name} on {config.dataset.name}")
    print(str(plan).splitlines()[0])
    print(explain(plan.parameters))
    return 0


def main(argv=None):
    """Entry point of the ``sealion`` console command; returns the exit code."""
    return primitives_cli.main(argv, extensions=(extend_params_command, add_run_command))


if __name__ == "__main__":
    sys.exit(main())

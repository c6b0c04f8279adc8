"""Verbs that make and train runs: register, train (and --resume), rerun, launch-script. The work is zhouyi.train's;
these parse, call and print."""

from __future__ import annotations

from pathlib import Path

from zhouyi.cli.common import dry_run_flag, load_spec, spec_args, verb
from zhouyi.errors import UserError

FORCE_HELP = "repoint registry entries of the same name"


def add_verbs(sub) -> None:
    p = verb(sub, "register", cmd_register, "merge the spec's datasets into <dataset_dir>/dataset_info.json")
    spec_args(p)
    p.add_argument("--force", action="store_true", help="repoint an existing entry of the same name")

    p = verb(sub, "train", cmd_train, "train SPEC in a new run directory with llamafactory-cli train")
    spec_args(p, optional=True)
    p.add_argument("--resume", metavar="RUN", help="continue the stopped run RUN from its last checkpoint")
    p.add_argument("--from", dest="from_run", metavar="RUN",
                   help="train on top of the finished LoRA run RUN (e.g. DPO after SFT): its adapter is merged first "
                   "and a new adapter trains on the merge, which is also the DPO reference")
    dry_run_flag(p, "render and print the command; run nothing")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument("--node-rank", type=int, default=None, help="this node's rank in a multi-node job")

    p = verb(sub, "rerun", cmd_rerun, "train again from a run's recorded spec; warns when data or versions changed")
    p.add_argument("run", metavar="RUN")
    dry_run_flag(p, "render and print the command; run nothing")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)

    p = verb(sub, "launch-script", cmd_launch_script, "render SPEC into a new run and write its per-node launch script")
    spec_args(p)
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument("--slurm", action="store_true", help="an sbatch script: one task a node")
    kind.add_argument("--shell", action="store_true", help="a script each node runs with its NODE_RANK")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)


def cmd_register(args) -> int:
    from zhouyi import train

    print(train.register(load_spec(args).spec, Path.cwd(), args.force).describe())
    return 0


def cmd_train(args) -> int:
    from zhouyi import train

    if args.resume:
        if args.from_run:
            raise UserError("give --resume RUN or --from RUN, not both: a resumed run goes on from where it was")
        return _resume(args)
    if not args.spec:
        raise UserError("train needs SPEC (a spec file or preset), or --resume RUN")
    from_dir = Path(args.from_run) if args.from_run else None
    run = train.prepare(load_spec(args), Path.cwd(), node_rank=args.node_rank, from_dir=from_dir, force=args.force,
                        dry_run=args.dry_run)
    return _run(run, args.dry_run)


def _resume(args) -> int:
    from zhouyi import train
    from zhouyi.files import sole_writer

    if args.spec:
        raise UserError("give SPEC or --resume RUN, not both: a resumed run keeps the spec it was started with")
    with sole_writer(Path(args.resume), "train --resume"):
        run, checkpoint = train.resume(Path(args.resume), args.node_rank, args.dry_run)
        print(f"resuming {run.dir.name} from {checkpoint.name}")
        return _run(run, args.dry_run, rendered=False)


def cmd_rerun(args) -> int:
    """A new run from a run's recorded spec, after saying what changed since (data, package versions)."""
    import sys

    from zhouyi import train

    loaded, notes, from_dir = train.rerun_source(Path(args.run))
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    run = train.prepare(loaded, Path.cwd(), from_dir=from_dir, force=args.force, dry_run=args.dry_run)
    return _run(run, args.dry_run)


def cmd_launch_script(args) -> int:
    from zhouyi import train

    kind = "slurm" if args.slurm else "shell"
    run = train.prepare(load_spec(args), Path.cwd(), script=kind, force=args.force)
    print(train.write_node_script(run, kind))
    return 0


def _run(run, dry_run: bool, rendered: bool = True) -> int:
    from zhouyi import process, train

    if dry_run:
        if rendered:
            print(f"dry run: rendered files in {run.dir}")
        if run.start is not None:
            process.run(run.start, dry_run=True)
        return process.run(run.command, dry_run=True)
    return train.train(run)

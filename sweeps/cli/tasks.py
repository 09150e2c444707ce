"""``ablate tasks [NAME]``: the tasks, or one task's keys (default, allowed values, meaning), its component
slots (with every registered component and its own argument keys) and metrics.  ``--import`` imports a
researcher's own code first (as a sweep file's ``imports:`` does), so its tasks and components show."""
from __future__ import annotations

from pathlib import Path

from ..errors import UsageError


def add(sub) -> None:
    k = sub.add_parser("tasks", help="list tasks, or the keys and component slots of one task")
    k.add_argument("name", nargs="?")
    k.add_argument("--import", dest="imports", action="append", metavar="FILE|MODULE",
                   help="import your own layers / tasks first: a .py file, a package folder or a module name "
                        "(repeatable; runs that code)")
    k.set_defaults(func=cmd_tasks)


def cmd_tasks(args) -> int:
    from tasks import available_tasks, get_task

    if args.imports:
        from ..language.imports import import_entries

        import_entries(args.imports, str(Path.cwd() / "--import"))
    if args.name and args.name not in available_tasks():
        raise UsageError(f"unknown task {args.name!r}; tasks: {', '.join(available_tasks())}")
    for n in [args.name] if args.name else available_tasks():
        t = get_task(n)
        print(f"{t.name}: {t.description}  [{t.paper}]")
        if args.name:
            _print_task_keys(t)
            _print_slots(t)
    return 0


def _print_slots(t) -> None:
    if not t.slots:
        return
    print("\ncomponent slots (any registered component of the kind fits; its own arguments are keys "
          "<slot>.<argument>):")
    for s in t.slots:
        print(f"  {s.key}  (kind {s.kind}): {s.contract}")
        print(f"    allowed: {', '.join(map(str, t.slot_choices(s)))}")
        for key, p in sorted(t.argument_params(s).items()):
            only = ", ".join(p.when[s.key])
            print(f"    {key}  default {_show(p.default)}, {p.allowed()}; for {only}")


def _show(v) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, str):
        return v if v else '""'
    return f"{v:g}" if isinstance(v, float) else str(v)


def _print_task_keys(t) -> None:
    print(f"\nmetrics: {', '.join(f'{m} ({d})' for m, d in t.metrics.items())}\n")
    rows = [("key", "default", "allowed", "meaning")]
    for k, p in sorted(t.params.items()):
        allowed = ("one of " + ", ".join(_show(c) for c in p.choices)) if p.choices else p.allowed()
        cond = ("; only when " + ", ".join(f"{a} in {{{', '.join(map(_show, vs))}}}" for a, vs in p.when.items())
                if p.when else "")
        rows.append((k, _show(p.default), allowed, p.doc + cond))
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print(f"  {r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:<{w[2]}}  {r[3]}".rstrip())

"""``ablate tasks [NAME]``: the tasks, or one task's keys (default, allowed values, meaning) and metrics."""
from __future__ import annotations

from ..errors import UsageError


def add(sub) -> None:
    k = sub.add_parser("tasks", help="list tasks, or the keys of one task")
    k.add_argument("name", nargs="?")
    k.set_defaults(func=cmd_tasks)


def cmd_tasks(args) -> int:
    from tasks import available_tasks, get_task

    if args.name and args.name not in available_tasks():
        raise UsageError(f"unknown task {args.name!r}; tasks: {', '.join(available_tasks())}")
    for n in [args.name] if args.name else available_tasks():
        t = get_task(n)
        print(f"{t.name}: {t.description}  [{t.paper}]")
        if args.name:
            _print_task_keys(t)
    return 0


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

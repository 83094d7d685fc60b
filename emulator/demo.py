"""`make demo`: a real `log-exporter run` against the local emulator, then the archive it made.

Starts the emulator on loopback, seeds an AWS Organization (two tagged accounts in nested OUs,
a sandbox and an untagged account that the config leaves out), each account with a few log
groups and three days of events (on both edges of every UTC day), writes a config with an
`organization:` block to .demo/config.yml, shows what `check` discovers, runs the installed
`log-exporter` process twice (the second run has nothing left to do), and prints the archive:
keys and event counts per day, and one group's events read back with `log-exporter cat`.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.tree import Tree

from . import Emulator, EmulatorServer, seed
from .scenario import archived, client_env, misplaced, organization_yaml, sample_world

YES = (("log-archive", "yes"),)
ORGANIZATION = (
    seed.SeedAccount("payments", "workloads/prod", YES),
    seed.SeedAccount("search", "workloads", YES),
    seed.SeedAccount("sandbox-dave", "workloads", YES),  # exclude_accounts: sandbox-*
    seed.SeedAccount("legacy", "workloads"),  # not tagged log-archive: yes
)


def main() -> int:
    console = Console()
    workdir = Path(".demo")
    workdir.mkdir(exist_ok=True)
    exporter = str(Path(sys.executable).parent / "log-exporter")
    with Emulator(pending_seconds=0.05, base_seconds=0.25) as emu, EmulatorServer(emu) as server:
        org = seed.create_organization(ORGANIZATION)
        world = sample_world(accounts=list(org.accounts.values()), days=3)
        selected = [org.accounts["payments"], org.accounts["search"]]
        config = workdir / "config.yml"
        config.write_text(organization_yaml(world.bucket, [org.ous["workloads"]], prefix="logs"))
        console.rule(f"emulator on {server.endpoint_url}; config {config}")
        console.print(config.read_text(), highlight=False, markup=False)
        env = client_env(server.endpoint_url)

        console.rule(f"log-exporter check --config {config}  (what the organization holds)")
        check = subprocess.run(
            [exporter, "check", "--config", str(config)], env=env, capture_output=True, text=True
        )
        # the discovery table; the per-lane checks follow it
        discovered = check.stdout.split("log-exporter check", 1)[0] or check.stderr
        console.print(discovered, highlight=False, markup=False)

        for attempt in ("first run", "second run: nothing new, so no task"):
            console.rule(f"log-exporter run --config {config}  ({attempt})")
            before = len(emu.tasks)
            code = subprocess.call([exporter, "run", "--config", str(config)], env=env)
            console.print(f"exit code {code}; export tasks created: {len(emu.tasks) - before}")
            if code != 0:
                return code

        got, events = archived(world.bucket, "logs")
        console.rule(f"s3://{world.bucket}/logs/")
        tree = Tree(f"s3://{world.bucket}/logs/")
        days: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
        keys: dict[str, set[str]] = defaultdict(set)
        for e in events:
            days[f"{e.account_id}/{e.group}"][e.day][e.task_id] += 1
            # what AWS wrote under the task's folder: <stream>/000000.gz
            keys[f"{e.account_id}/{e.group}/{e.day}"].add(e.key.split(f"/{e.task_id}/", 1)[1])
        for group_path in sorted(days):
            branch = tree.add(group_path + "/")
            for day in sorted(days[group_path]):
                tasks = days[group_path][day]
                total = sum(tasks.values())
                leaf = branch.add(
                    f"{day.replace('-', '/')}/  {total} events, task {', '.join(tasks)}"
                )
                for key in sorted(keys[f"{group_path}/{day}"]):
                    leaf.add(f"[dim]{key}")
        console.print(tree)
        if events:
            example = sorted(e.key for e in events)[0]
            console.print(
                f"a full key: s3://{world.bucket}/{example}", highlight=False, markup=False
            )
        expected = world.expected(
            groups=["/aws/lambda/api", "/aws/lambda/worker", "vpc-flow-logs"], accounts=selected
        )
        verdict = got == expected and not misplaced(events)
        console.print(
            f"{sum(got.values())} events archived, {sum(expected.values())} expected; "
            f"every event exactly once in its own UTC day: {'yes' if verdict else 'NO'}"
        )
        # reading it back: one group's days, in timestamp order across its streams
        first = min(e.day for e in events)
        today = datetime.now(UTC).date().isoformat()
        args = ["--account", "payments", "--group", "/aws/lambda/api"]
        args += ["--start", first, "--end", today]
        console.rule(f"log-exporter cat --config {config} {' '.join(args)}")
        code = subprocess.call([exporter, "cat", "--config", str(config), *args], env=env)
        return 0 if verdict and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

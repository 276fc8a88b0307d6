"""What the user asked doit for: the command, the selected tasks and their parameters.

The task graph of a rollout depends on its parameters (a promotion is compiled from another
commit), and only the selected deployments and targets are compiled, so both entry points (the
`dodo.py` import and the loader plugin) read the command line before creating tasks.
"""

from __future__ import annotations

import fnmatch
import getopt
from dataclasses import dataclass, field
from typing import Any

from atmos_tasks.errors import Problem

TASK_KINDS = ("rollout", "apply", "plan", "record", "vendor", "build", "test")
DEPLOYING_KINDS = ("rollout", "apply", "record")
# An image build first applies the Terraform components it needs (e.g. the registry it pushes to):
# it runs like a rollout of those (lock, remote, dirty-tree check), narrowed to the images it names.
IMAGE_KINDS = ("build", "test")
# A selection of plan tasks only is a preview: it plans against what is deployed, applies nothing.
PREVIEW_KINDS = ("plan",)
DOIT_COMMANDS = frozenset(
    {
        "run",
        "list",
        "info",
        "clean",
        "forget",
        "ignore",
        "dumpdb",
        "help",
        "strace",
        "tabcompletion",
        "reset-dep",
        "auto",
    }
)

CACHE_PARAM: dict[str, Any] = {
    "name": "cache",
    "long": "cache",
    "type": str,
    "default": "",
    "help": "share vendored modules and plans through this remote cache, oci://<registry>/<repository> "
    "(default: $ATMOS_TASKS_CACHE, then cache.url in atmos.yaml; none: no cache)",
}
SHOW_PLAN_PARAM: dict[str, Any] = {
    "name": "show_plan",
    "long": "show-plan",
    "type": bool,
    "default": False,
    "help": "print each component's plan under it: a line per resource and output that changes "
    "(+ create, ~ update, - destroy, -/+ replace), sensitive values never shown",
}
ROLLOUT_PARAMS: list[dict[str, Any]] = [
    {
        "name": "promote_from",
        "long": "promote-from",
        "type": str,
        "default": "",
        "help": "deploy the commit that this target runs, with this target's context",
    },
    {
        "name": "git_sha",
        "long": "git-sha",
        "type": str,
        "default": "",
        "help": "roll back (or forward) to a commit deployed to this target before",
    },
    {
        "name": "approve",
        "long": "approve",
        "type": bool,
        "default": False,
        "help": "record your approval for this rollout",
    },
    {
        "name": "allow_dirty",
        "long": "allow-dirty",
        "type": bool,
        "default": False,
        "help": "deploy a working tree with uncommitted changes (recorded in the tag)",
    },
    {
        "name": "verify",
        "long": "verify",
        "type": bool,
        "default": False,
        "help": "check each vendored module's object in the store before use; a damaged one is evicted, "
        "fetched again and reported (also: ATMOS_TASKS_VERIFY=1)",
    },
    {
        "name": "component",
        "long": "component",
        "type": str,
        "default": "",
        "help": "roll out or promote only these components (comma-separated), with what they depend on: "
        "a CI matrix job's share; only they are recorded",
    },
    {
        "name": "remote",
        "long": "remote",
        "type": str,
        "default": "",
        "help": "sync records with this Git remote (default: $ATMOS_TASKS_REMOTE)",
    },
    CACHE_PARAM,
    SHOW_PLAN_PARAM,
]
BUILD_PARAMS: list[dict[str, Any]] = [
    {
        "name": "skip_push",
        "long": "skip-push",
        "type": bool,
        "default": False,
        "help": "build the image but do not push it",
    },
    {
        "name": "allow_dirty",
        "long": "allow-dirty",
        "type": bool,
        "default": False,
        "help": "apply the Terraform components the images need from a working tree with uncommitted changes",
    },
    {
        "name": "remote",
        "long": "remote",
        "type": str,
        "default": "",
        "help": "sync records with this Git remote (default: $ATMOS_TASKS_REMOTE)",
    },
    CACHE_PARAM,
]
# The `build:<dep>:<target>` group: which of the target's images.
BUILD_GROUP_PARAMS: list[dict[str, Any]] = [
    *BUILD_PARAMS,
    {
        "name": "component",
        "long": "component",
        "type": str,
        "default": "",
        "help": "build only these images (comma-separated), with what they need",
    },
]
# The `plan:<dep>:<target>` group (a preview): which of the target's components.
PLAN_GROUP_PARAMS: list[dict[str, Any]] = [
    {
        "name": "component",
        "long": "component",
        "type": str,
        "default": "",
        "help": "plan only these components (comma-separated), with what they depend on",
    },
    {
        "name": "promote_from",
        "long": "promote-from",
        "type": str,
        "default": "",
        "help": "plan the commit that this target runs, as a promotion would deploy it here",
    },
    {
        "name": "git_sha",
        "long": "git-sha",
        "type": str,
        "default": "",
        "help": "plan this commit, as deploying it here would (an approval prompt shows this plan)",
    },
    CACHE_PARAM,
    SHOW_PLAN_PARAM,
]


@dataclass(frozen=True)
class RolloutOptions:
    promote_from: str | None = None
    git_sha: str | None = None
    approve: bool = False
    allow_dirty: bool = False
    skip_push: bool = False
    components: tuple[str, ...] = ()
    remote: str | None = None
    verify: bool = False  # vendor: tasks check the object before use
    cache: str | None = None  # --cache: the remote cache's URL (`none`: no cache)
    show_plan: bool = False  # plans are shown a line per change (`planview`)

    def merged(self, other: RolloutOptions) -> RolloutOptions:
        return RolloutOptions(
            promote_from=self.promote_from or other.promote_from,
            git_sha=self.git_sha or other.git_sha,
            approve=self.approve or other.approve,
            allow_dirty=self.allow_dirty or other.allow_dirty,
            skip_push=self.skip_push or other.skip_push,
            components=self.components or other.components,
            remote=self.remote or other.remote,
            verify=self.verify or other.verify,
            cache=self.cache or other.cache,
            show_plan=self.show_plan or other.show_plan,
        )


@dataclass(frozen=True)
class Selected:
    kind: str
    deployment: str  # may hold glob characters
    target: str
    component: str
    options: RolloutOptions

    def matches(self, deployment: str, target: str) -> bool:
        return fnmatch.fnmatchcase(deployment, self.deployment) and fnmatch.fnmatchcase(target, self.target)


@dataclass
class Invocation:
    command: str = "run"
    selected: list[Selected] = field(default_factory=list)
    other_tasks: bool = False
    # Options a selected task does not take: bad input (exit 2), reported before anything is compiled.
    problems: list[Problem] = field(default_factory=list)

    @property
    def executes(self) -> bool:
        return self.command == "run"

    @property
    def selects_everything(self) -> bool:
        """No atmos task named: listing commands see every deployment and target."""
        return not self.selected and not self.executes

    def options_for(self, deployment: str, target: str) -> RolloutOptions:
        options = RolloutOptions()
        for item in self.selected:
            if item.matches(deployment, target):
                options = options.merged(item.options)
        return options

    def deploys(self, deployment: str, target: str) -> bool:
        """Runs what may apply Terraform: under the target's lock, from the remote, from a clean tree."""
        return self.executes and any(
            s.kind in (*DEPLOYING_KINDS, *IMAGE_KINDS) and s.matches(deployment, target)
            for s in self.selected
        )

    def images(self, deployment: str, target: str) -> set[str] | None:
        """When only builds (and tests) of the target run: the images they name (`*`: every one)."""
        return self._only(deployment, target, IMAGE_KINDS) if self.executes else None

    def previews(self, deployment: str, target: str) -> set[str] | None:
        """When only plans of the target are named (a preview): the components (`*`: every one).

        Whatever the command: `doit info`, `strace` or `forget` of a plan task see the preview's
        task, never the rollout's plan, which would apply its dependencies.
        """
        return self._only(deployment, target, PREVIEW_KINDS)

    def mixes_preview(self, deployment: str, target: str) -> bool:
        """Plans of the target named together with other tasks of it: one run cannot be both."""
        kinds = {s.kind in PREVIEW_KINDS for s in self.selected if s.matches(deployment, target)}
        return kinds == {True, False}

    def locks(self, deployment: str, target: str) -> bool:
        """Runs under the target's lock: what deploys, and previews (they share its workdirs)."""
        return self.deploys(deployment, target) or (
            self.executes and self.previews(deployment, target) is not None
        )

    def _only(self, deployment: str, target: str, kinds: tuple[str, ...]) -> set[str] | None:
        selected = [s for s in self.selected if s.matches(deployment, target)]
        if not selected or any(s.kind not in kinds for s in selected):
            return None
        names: set[str] = set()
        for item in selected:
            if item.component != "*":
                names.add(item.component)
            else:
                names.update(item.options.components or ("*",))
        return names


def task_params(kind: str, component: bool) -> list[dict[str, Any]]:
    """The options a task takes, as the task graph declares them (a component's task or a group)."""
    if kind in ("rollout", "apply"):
        return ROLLOUT_PARAMS
    if kind in IMAGE_KINDS:
        return BUILD_PARAMS if component else BUILD_GROUP_PARAMS
    if kind in PREVIEW_KINDS and not component:
        return PLAN_GROUP_PARAMS
    return []


def _parse_options(
    task: str, params: list[dict[str, Any]], args: list[str]
) -> tuple[RolloutOptions, list[str], Problem | None]:
    from doit.cmdparse import CmdOption, TaskParse

    parser = TaskParse([CmdOption(p) for p in params])
    try:  # doit's own parse reports every option it knows of, with its internals: say it for people
        getopt.getopt(args, parser.get_short(), parser.get_long())
    except getopt.GetoptError as err:
        takes = ", ".join(f"--{p['long']}" for p in params)
        return (
            RolloutOptions(),
            args,
            Problem(
                f"{task}: {err.msg.replace('requires argument', 'requires an argument')}",
                None,
                (f"{task} takes {takes}" if takes else f"{task} takes no options")
                + "; doit's own options (such as -n 2) go before the task names",
            ),
        )
    values, rest = parser.parse(args)
    return (
        RolloutOptions(
            promote_from=values.get("promote_from") or None,
            git_sha=values.get("git_sha") or None,
            approve=bool(values.get("approve")),
            allow_dirty=bool(values.get("allow_dirty")),
            skip_push=bool(values.get("skip_push")),
            components=tuple(c.strip() for c in str(values.get("component") or "").split(",") if c.strip()),
            remote=values.get("remote") or None,
            verify=bool(values.get("verify")),
            cache=values.get("cache") or None,
            show_plan=bool(values.get("show_plan")),
        ),
        list(rest),
        None,
    )


def parse_selection(args: list[str]) -> tuple[list[Selected], bool, list[Problem]]:
    """Atmos task names (with their options) among doit's positional arguments, and the options
    that a named task does not take."""
    selected: list[Selected] = []
    problems: list[Problem] = []
    other = False
    rest = list(args)
    while rest:
        token = rest.pop(0)
        if token.startswith("-"):
            continue
        kind, colon, tail = token.partition(":")
        if kind not in TASK_KINDS:
            other = other or ("=" not in token and not token.isdigit())
            continue
        parts = tail.split(":", 2) if colon else []
        deployment = parts[0] if parts and parts[0] else "*"
        target = parts[1] if len(parts) > 1 and parts[1] else "*"
        component = parts[2] if len(parts) > 2 else "*"
        options, rest, problem = _parse_options(token, task_params(kind, len(parts) > 2), rest)
        if problem is not None:
            problems.append(problem)
        selected.append(Selected(kind, deployment, target, component, options))
    return selected, other, problems


def from_argv(argv: list[str]) -> Invocation:
    """Read doit's own command line (the `dodo.py` entry point has no other access to it)."""
    command = "run"
    positional: list[str] = []
    for index, token in enumerate(argv):
        if token in DOIT_COMMANDS and not positional:
            command = token
            positional = argv[index + 1 :]
            break
        if not token.startswith("-"):
            kind = token.partition(":")[0]
            if kind in TASK_KINDS:
                positional = argv[index:]
                break
    selected, other, problems = parse_selection(positional)
    return Invocation(command, selected, other, problems)


def from_loader(command: str, pos_args: list[str]) -> Invocation:
    selected, other, problems = parse_selection(list(pos_args))
    return Invocation(command, selected, other, problems)

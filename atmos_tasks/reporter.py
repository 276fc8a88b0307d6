"""Rollout progress for doit: one line per component step, with timings, then what was recorded.

Colour on a terminal, plain lines otherwise; NO_COLOR is honoured. Lines carry a tiny markup
(`[green]✓[/]`) turned into ANSI codes here: the reporter runs on every no-op rollout, where
importing a rich console would cost more than the whole up-to-date check.

It also turns a refusal at record time (a lost ref race) into exit code 3 (SPEC §13), which doit
itself cannot express: after the run completes it raises SystemExit with that code. A failed
component exits 1 also when no `record` task ran to fail (`doit apply:<dep>:<target>:<c>`, as a CI
matrix job runs it): failures are values, so doit alone would report success.

In GitHub Actions (`$GITHUB_STEP_SUMMARY` names a file) each rollout and each preview appends a
Markdown job summary.

A preview (`doit plan:<dep>:<target>`) prints the same plan lines and ends with how many components
a rollout would change; changes are not a failure (exit 0), a plan that failed is (exit 1). A
component bound to an image the rollout would build again counts as changing; one planned against
the current outputs of a dependency that would change may change too, and says so.

With `--show-plan` each plan's lines (`planview`: a line per resource and output that changes) are
printed under the component; the job summary folds them per component in `<details>`.

Every line and job summary goes through `secrets.mask`, with the sensitive values the tasks'
saved values carry (`secrets.py`).
"""

from __future__ import annotations

import os
import re
import time
from typing import Any, TextIO

from atmos_tasks import secrets
from atmos_tasks.preview import rebuilds, rebuilt_images

VERBS = {
    "vendor": {"run": "vendoring", "vendored": "vendored", "uptodate": "module up to date"},
    "build": {"run": "building", "built": "built", "uptodate": "image up to date"},
    "reuse": {"run": "reusing the recorded image", "built": "image reused", "uptodate": "image up to date"},
    "test": {"run": "testing", "built": "tests passed", "uptodate": "tests up to date"},
    "plan": {"run": "planning", "planned": "planned", "uptodate": "plan up to date"},
    "apply": {"run": "applying", "applied": "applied", "uptodate": "apply up to date"},
}
# A plan's lines shown per component, at most (the plan log in its workdir has them all).
SHOWN_LINES = 200
_STYLES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33"}
_MARKUP = re.compile(r"\[(/|[a-z ]+)\]")


def _loaded_graph() -> Any:
    import sys

    return getattr(sys.modules.get("atmos_tasks.doit_loader"), "GRAPH", None)


def _graph_shown() -> str:
    """How long loading the task graph took, and whether it was compiled or the cached one."""
    outcome = _loaded_graph()
    return f" ({outcome.shown()})" if outcome is not None else ""


def _meta(task: Any) -> dict[str, Any]:
    meta = getattr(task, "meta", None) or {}
    found = meta.get("atmos")
    return found if isinstance(found, dict) else {}


class RolloutReporter:
    desc = "per-component rollout progress with timings (atmos-tasks)"

    def __init__(self, outstream: TextIO, options: dict[str, Any]) -> None:
        self.out = outstream
        isatty = getattr(outstream, "isatty", lambda: False)
        self.color = bool(isatty()) and not os.environ.get("NO_COLOR")
        self.started: dict[str, float] = {}
        # How long each task that ran took: the next run starts the longest paths first.
        self.durations: dict[str, float] = {}
        self.t0 = time.monotonic()
        self.rollouts: list[dict[str, Any]] = []
        self.summaries: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.exit_code = 0
        self.failed_components = 0
        # A task failed or doit met an error: doit may have stopped before every task.
        self.failed = False
        # (deployment, target, component) → step kind → (task, "ran" | "uptodate" | "error"); the
        # values of an up-to-date task are loaded only after `skip_uptodate`, so they are read at the end.
        self.steps: dict[tuple[str, str, str], dict[str, tuple[Any, str]]] = {}
        # A preview (plan tasks only): its header metadata, and per (deployment, target, component)
        # the plan's values (`status`, `has_changes`, `changes`, `image`, `reason`, `error`).
        self.previews: list[dict[str, Any]] = []
        self.previewed: dict[tuple[str, str, str], dict[str, Any]] = {}
        # (deployment, target) whose plans are shown a line per change (`--show-plan`).
        self.shown: set[tuple[str, str]] = set()
        self.tasks: dict[str, Any] = {}

    def _style(self, match: re.Match[str]) -> str:
        if not self.color:
            return ""
        name = match.group(1)
        if name == "/":
            return "\033[0m"
        codes = [_STYLES[word] for word in name.split() if word in _STYLES]
        return f"\033[{';'.join(codes)}m" if codes else match.group(0)

    def _line(self, text: str, flush: bool = True) -> None:
        self.out.write(_MARKUP.sub(self._style, secrets.mask(text)) + "\n")
        if flush:
            self.out.flush()

    @staticmethod
    def _learn(values: dict[str, Any]) -> None:
        """The sensitive values a task's saved values carry: a plan's, an apply's outputs."""
        if values.get("secrets"):
            secrets.add(values["secrets"])
        if values.get("sensitive"):
            secrets.add_outputs(values.get("outputs"), values["sensitive"])

    def initialize(self, tasks: dict[str, Any], selected_tasks: list[str]) -> None:
        self.tasks = tasks
        for name in selected_tasks or []:
            task = tasks.get(name)
            meta = _meta(task)
            if meta.get("deployment") and (getattr(task, "options", None) or {}).get("show_plan"):
                self.shown.add((meta["deployment"], meta["target"]))
        seen = set()
        queue = list(selected_tasks or [])
        while queue:
            name = queue.pop(0)
            if name in seen or name not in tasks:
                continue
            seen.add(name)
            task = tasks[name]
            meta = _meta(task)
            if meta.get("kind") == "rollout":
                self.rollouts.append(meta)
            elif meta.get("kind") == "preview":
                self.previews.append(meta)
                self._preview_header(meta)
            queue.extend(task.task_dep)
        for meta in self.rollouts:
            dirty = " [yellow](uncommitted changes allowed)[/]" if meta.get("dirty") else ""
            branch = f" on {meta['branch']}" if meta.get("branch") else ""
            sha = meta["git_sha"][:7]
            if meta.get("promoted_from"):
                title = f"Promoting {meta['deployment']} from {meta['promoted_from']} to {meta['target']}"
                self._line(f"[bold]{title}[/] at {sha}")
            elif meta.get("rollback"):
                self._line(f"[bold]Rolling back {meta['deployment']} on {meta['target']}[/] to {sha}")
            else:
                self._line(
                    f"[bold]Rolling out {meta['deployment']} to {meta['target']}[/] at {sha}{branch}{dirty}"
                )
            self._line(f"  Components ({len(meta['components'])}): {', '.join(meta['components'])}")
            if meta.get("settled"):
                self._line(
                    f"  [dim]–[/] all {len(meta['components'])} components up to date (each checked at "
                    f"{meta['settled']}; nothing they read has changed since)"
                )
            self._answered(meta)

    def _answered(self, meta: dict[str, Any]) -> None:
        """The components of this rollout known to be up to date before doit ran (`answered.py`):
        their steps, as doit's up-to-date tasks would leave them, and one line for them all."""
        outcome = _loaded_graph()
        if outcome is None or outcome.verify_answers:
            return
        found = outcome.answers.get((meta["deployment"], meta["target"]), {})
        if not found:
            return
        for component, answered in found.items():
            self.steps[(meta["deployment"], meta["target"], component)] = {
                kind: (step, "uptodate") for kind, step in answered.items()
            }
        names = [component.split("/", 1)[-1] for component in found]
        counted = f"{len(names)} component{'s' if len(names) > 1 else ''}"
        self._line(
            f"  [dim]–[/] {counted} up to date: {listed(names)} "
            "(modules, plans and applies as they last ran; nothing they read has changed)"
        )

    def _preview_header(self, meta: dict[str, Any]) -> None:
        dirty = " [yellow](with uncommitted changes)[/]" if meta.get("dirty") else ""
        branch = f" on {meta['branch']}" if meta.get("branch") else ""
        self._line(
            f"[bold]Planning {meta['deployment']} for {meta['target']}[/] at {meta['git_sha'][:7]}{branch}"
            f"{dirty}: nothing is applied or recorded"
        )
        self._line(f"  Components ({len(meta['components'])}): {', '.join(meta['components'])}")
        for name, image in meta.get("images", {}).items():
            if rebuilds(image):
                self._line(
                    f"  Image {name}: [yellow]would be rebuilt[/] (its source changed); its components are "
                    f"planned with the one {meta['target']} runs now, {image['image']}"
                )
            elif image.get("status") == "built":
                self._line(f"  Image {name}: {image['image']}, {image['from']}")
            else:
                self._line(f"  Image {name}: [yellow]{image.get('reason', 'none')}[/]")

    def get_status(self, task: Any) -> None:
        pass

    def execute_task(self, task: Any) -> None:
        self.started[task.name] = time.monotonic()
        meta = _meta(task)
        kind = meta.get("kind")
        if kind in VERBS:
            self._line(f"  [dim]…[/] {meta['component']}: {VERBS[kind]['run']}")
        elif not meta and task.actions and not task.name.startswith("_"):
            self._line(f".  {task.title()}")

    def _elapsed(self, task: Any) -> str:
        start = self.started.pop(task.name, None)
        if start is None:
            return ""
        seconds = time.monotonic() - start
        self.durations[task.name] = seconds
        return f" ({seconds:.1f}s)"

    def _step(self, task: Any, meta: dict[str, Any], how: str) -> None:
        key = (meta["deployment"], meta["target"], meta["component"])
        self.steps.setdefault(key, {})[meta["kind"]] = (task, how)

    def add_success(self, task: Any) -> None:
        meta = _meta(task)
        kind = meta.get("kind")
        values = getattr(task, "values", None) or {}
        self._learn(values)
        if kind in VERBS:
            self._step(task, meta, "ran")
            self._component_done(task, meta, values)
        elif kind == "record":
            self._elapsed(task)
            self.summaries.append(values)

    def _component_done(self, task: Any, meta: dict[str, Any], values: dict[str, Any]) -> None:
        status = values.get("status")
        where = (meta["deployment"], meta["target"])
        if meta.get("preview"):
            values = self._previewed(task, meta, values)
        elapsed = self._elapsed(task)
        name = meta["component"]
        kind = meta["kind"]
        if values.get("current") and status in ("planned", "applied"):
            current = values["current"]
            if kind == "apply":
                self._line(
                    f"  [dim]–[/] {name}: already runs this commit (deployed by {current.get('by', '?')} at "
                    f"{current.get('at', '?')}), nothing applied"
                    + (
                        ", its outputs from the remote cache"
                        if (values.get("cache") or {}).get("apply")
                        else ""
                    )
                )
            if values.get("repaired"):
                self._line(f"  [yellow bold]! {name}: warning: {values['repaired']}[/]")
            return
        if status in VERBS[kind]:
            detail = ""
            if status == "planned":
                detail = f", {preview_phrase(values)}"
                for image, origin in (values.get("image_from") or {}).items():
                    if image not in values.get("rebuilt", ()):
                        detail += f", with the {image} image {origin}"
                cached = values.get("cache") or {}
                if cached.get("plan") == "reused" and isinstance(cached.get("made_by"), dict):
                    # Whose plan this is: the one another run made and the cache kept.
                    from atmos_tasks.remotecache import shown_producer

                    detail += f", the plan from the remote cache, made by {shown_producer(cached['made_by'])}"
            elif kind == "vendor":
                detail = f" {values.get('version') or ''} {values.get('digest', '')[:12]}".rstrip()
            elif kind in ("build", "reuse"):
                how = "recorded image reused" if values.get("reused") else f"with {values.get('builder')}"
                made_by = (values.get("cache") or {}).get("made_by")
                if (values.get("cache") or {}).get("build") == "reused" and isinstance(made_by, dict):
                    from atmos_tasks.remotecache import shown_producer

                    how = f"image from the remote cache, built by {shown_producer(made_by)}"
                detail = (f" ({how})" if kind == "build" else "") + f" {values.get('digest', '')[:19]}"
            self._line(f"  [green]✓[/] {name}: {VERBS[kind][status]}{detail}{elapsed}")
            if where in self.shown:
                self._plan_lines(task, meta, values)
            if values.get("repaired"):  # a damaged object in the store was replaced: never silently
                self._line(f"  [yellow bold]! {name}: warning: {values['repaired']}[/]")
        elif status == "skipped":
            self._line(f"  [yellow]-[/] {name}: skipped, {values.get('reason', '')}")
        elif values.get("after"):
            # The error was shown where it happened, one step earlier.
            self.failed_components += 1
            self._line(f"  [red]✗[/] {name}: {kind} not attempted, {values['after']} failed")
        else:
            self.failed_components += 1
            self._line(f"  [red]✗[/] {name}: {kind} failed{elapsed}")
            for line in str(values.get("error", "")).splitlines():
                self._line(f"      {line}")
            if values.get("workdir"):
                self._line(f"      workdir kept: {values['workdir']}")

    def _previewed(self, task: Any, meta: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        """A preview plan's values, with what it means for a rollout: the images it would build
        again (`rebuilt`), and the dependencies that would change first (`follows`) when this
        plan, made against their current outputs, has none."""
        found = {**values, "status": str(values.get("status"))}
        if found["status"] == "planned":
            rebuilt = rebuilt_images(values.get("image_from") or {})
            if rebuilt:
                found["rebuilt"] = rebuilt
            elif not values.get("has_changes"):
                follows = []
                for dependency, _key in (getattr(task, "getargs", None) or {}).values():
                    theirs = str(_meta(self.tasks.get(dependency)).get("component"))
                    outcome = self.previewed.get((meta["deployment"], meta["target"], theirs))
                    if outcome and _may_change(outcome):
                        follows.append(theirs.split("/", 1)[1])
                if follows:
                    found["follows"] = sorted(follows)
        self.previewed[(meta["deployment"], meta["target"], meta["component"])] = found
        return found

    def _plan_lines(self, task: Any, meta: dict[str, Any], values: dict[str, Any]) -> None:
        """Under a component that planned, its plan's lines; under one that applied a plan made
        before this run (a preview's, found up to date), that plan's."""
        if meta["kind"] == "apply":
            plan = self.steps.get((meta["deployment"], meta["target"], meta["component"]), {}).get("plan")
            if plan is None or plan[1] != "uptodate":
                return  # shown when it was planned
            values = getattr(plan[0], "values", None) or {}
        elif meta["kind"] != "plan":
            return
        if not values.get("has_changes"):
            return
        lines = values.get("plan_summary")
        if lines is None:
            workdir = values.get("workdir") or "its workdir"
            lines = [f"(planned before this run, without its lines: the plan is in {workdir}/atmos-plan.log)"]
        for line in shown_lines(lines, values.get("workdir")):
            self._line(f"      {line}")

    def skip_uptodate(self, task: Any) -> None:
        meta = _meta(task)
        if meta.get("preview"):
            # Up to date in a preview: the rollout's plan is up to date and applied, it would do nothing.
            key = (meta["deployment"], meta["target"], meta["component"])
            self.previewed[key] = {"status": "planned", "has_changes": False, "uptodate": True}
            self._line(f"  [dim]–[/] {meta['component']}: no changes (plan up to date)")
        elif meta.get("kind") in VERBS:
            self._step(task, meta, "uptodate")
            # Written with the next line that is flushed: a no-op of 300 components is 600 of these.
            self._line(f"  [dim]–[/] {meta['component']}: {VERBS[meta['kind']]['uptodate']}", flush=False)
        elif not meta and not task.name.startswith("_"):
            self._line(f"-- {task.title()}")

    def skip_ignore(self, task: Any) -> None:
        self._line(f"!! {task.title()}")

    def add_failure(self, task: Any, fail: Any) -> None:
        self.failed = True
        meta = _meta(task)
        if meta.get("kind") in VERBS:
            self._step(task, meta, "error")
        summary = getattr(fail, "summary", None)
        if isinstance(summary, dict):
            self.summaries.append(summary)
        code = getattr(fail, "exit_code", None)
        if isinstance(code, int):
            self.exit_code = max(self.exit_code, code)
        message = getattr(fail, "message", str(fail))
        if summary is None:
            self.errors.append(f"{task.name}: {message}")
            if not meta:
                self.errors.append("".join(getattr(fail, "traceback", "") or ""))

    def cleanup_error(self, exception: Any) -> None:
        self.errors.append(str(getattr(exception, "get_msg", lambda: exception)()))

    def runtime_error(self, msg: str) -> None:
        self.failed = True
        self.errors.append(msg)

    def teardown_task(self, task: Any) -> None:
        pass

    def _keep_settled(self) -> None:
        """A rollout in which every plan and apply was up to date and nothing was recorded: its
        graph's next run may answer from it (`settled.py`)."""
        outcome = _loaded_graph()
        if outcome is None or outcome.key is None or outcome.root is None:
            return
        if self.exit_code or self.errors or self.failed_components or self.previews or not self.rollouts:
            return
        quiet = ["recorded", "not_recorded", "failed", "cancelled", "skipped", "sbom_error", "sbom_skipped"]
        quiet += ["notes_error", "signing_error"]
        if len(self.summaries) != len(self.rollouts) or any(s.get(k) for s in self.summaries for k in quiet):
            return
        from atmos_tasks import settled

        if outcome.settled is not None:
            settled.refresh(outcome.root, outcome.key, outcome.settled)
            return
        wanted = {(m["deployment"], m["target"], c) for m in self.rollouts for c in m["components"]}
        if set(self.steps) != wanted:
            return
        steps = [step for found in self.steps.values() for step in found.items()]
        if any(kind not in ("plan", "apply") or how != "uptodate" for kind, (_task, how) in steps):
            return
        targets = [t for _kind, (task, _how) in steps for t in getattr(task, "targets", ())]
        settled.write(outcome.root, outcome.key, outcome.pairs, targets, self.summaries)

    def _verify_answers(self) -> None:
        """`ATMOS_TASKS_GRAPH_CACHE=verify`: each component answered before doit ran (and left in
        the graph) must be one doit found up to date, with the values answered for it."""
        outcome = _loaded_graph()
        if outcome is None or not outcome.verify_answers or not outcome.answers:
            return
        from atmos_tasks.answered import mismatches

        wrong = mismatches(outcome.answers, self.steps)
        if self.failed:  # doit may have stopped: the components it never reached have no steps
            wrong = [found for found in wrong if not found.endswith(": absent")]
        if wrong:
            self.errors.append(
                "components answered as up to date before the run were not found so by doit "
                f"(answered.py): {'; '.join(wrong)}"
            )
            self.exit_code = max(self.exit_code, 1)

    def _keep_durations(self) -> None:
        outcome = _loaded_graph()
        if self.durations and outcome is not None and outcome.root is not None:
            from atmos_tasks import durations

            durations.record(outcome.root, self.durations)

    def complete_run(self) -> None:
        self._verify_answers()
        self._keep_durations()
        self._keep_settled()
        for steps in self.steps.values():
            for task, _how in steps.values():
                self._learn(getattr(task, "values", None) or {})
        for summary in self.summaries:
            self._print_summary(summary)
        for error in self.errors:
            if error.strip():
                self._line(f"[red]error:[/] {error.rstrip()}")
        if self.rollouts:
            total = f"{time.monotonic() - self.t0:.1f}s"
            if self.exit_code or self.errors or self.failed_components:
                self._line(f"[red bold]Rollout failed[/] after {total}")
            else:
                self._line(f"[green bold]Rollout complete[/] in {total}{_graph_shown()}")
        elif self.previewed:
            self._preview_verdict()
        self._append_job_summary()
        if self.failed_components:
            self.exit_code = max(self.exit_code, 1)
        if self.exit_code:
            raise SystemExit(self.exit_code)

    def _preview_verdict(self) -> None:
        changing, following, skipped, failed = _preview_counts(list(self.previewed.values()))
        total = f"{time.monotonic() - self.t0:.1f}s"
        counts = _counted(changing, following, skipped)
        rebuilt = [
            name
            for meta in self.previews
            for name, image in meta.get("images", {}).items()
            if rebuilds(image)
        ]
        if rebuilt:
            counts += f"; image(s) {', '.join(rebuilt)} would be rebuilt"
        if self.exit_code or self.errors or failed:
            self._line(
                f"[red bold]Plan failed[/]: {failed} component(s) could not be planned; {counts} ({total})"
            )
        else:
            self._line(f"[green bold]Plan complete[/]: {counts} ({total})")

    def _append_job_summary(self) -> None:
        path = os.environ.get("GITHUB_STEP_SUMMARY")
        if not path or not (self.rollouts or self.previews):
            return
        recorded = {(s.get("deployment"), s.get("target")): s for s in self.summaries}
        sections = []
        for meta in self.previews:
            where = (meta["deployment"], meta["target"])
            planned = {c: self.previewed.get((*where, c)) for c in meta["components"]}
            sections.append(preview_summary(meta, planned, self.errors))
        for meta in self.rollouts:
            where = (meta["deployment"], meta["target"])
            rows = [
                _summary_row(component, self.steps.get((*where, component), {}))
                for component in meta["components"]
            ]
            sections.append(job_summary(meta, rows, recorded.get(where), self.errors))
        try:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(secrets.mask("".join(sections)))
        except OSError as err:
            self._line(f"[yellow]warning:[/] job summary not written to {path}: {err.strerror or err}")

    def _print_summary(self, summary: dict[str, Any]) -> None:
        where = f"{summary['deployment']} → {summary['target']}"
        recorded = summary.get("recorded", [])
        if recorded:
            self._line(f"  Recorded {where} at {summary['git_sha'][:7]}:")
            for line in recorded_lines(recorded, summary["git_sha"][:7]):
                self._line(line)
        elif summary.get("not_recorded"):
            self._line(f"  [red]Nothing recorded for {where}[/]: {summary['not_recorded']}")
        elif not summary.get("failed") and not summary.get("cancelled") and summary.get("kind") != "build":
            self._line(
                f"  Nothing to record: {where} already runs {summary['git_sha'][:7]} with these inputs"
            )
        for name, reason in summary.get("skipped", {}).items():
            self._line(f"    [yellow]not deployed[/]: {name} ({reason})")
        unrecorded = summary.get("sbom_error") or summary.get("sbom_skipped")
        if unrecorded:
            self._line(f"    [yellow]SBOM not recorded[/]: {unrecorded}")
        if summary.get("notes_error"):
            self._line(f"    [yellow]build records not pushed[/]: {summary['notes_error']}")
        for warning in summary.get("cache_warnings", ()):
            self._line(f"    [yellow bold]! warning: {warning}[/]")
        if summary.get("signing_error"):
            self._line(f"    [yellow]records not signed[/]: {summary['signing_error']}")


# Up to this many components whose inputs did not change are listed one ref per line; more are
# summed up in one line (a deployment of 300 components changing one would print 600 lines).
LISTED_UNCHANGED = 5


def listed(names: list[str]) -> str:
    """Pure: the first `LISTED_UNCHANGED` names, then how many more."""
    more = f", … and {len(names) - LISTED_UNCHANGED} more" if len(names) > LISTED_UNCHANGED else ""
    return ", ".join(names[:LISTED_UNCHANGED]) + more


def recorded_lines(recorded: list[dict[str, Any]], short_sha: str) -> list[str]:
    """Pure: the lines saying which refs moved and which tags were written, the components whose
    inputs did not change (`changes: none`) together when there are many, with their one rollout tag."""
    unchanged = [
        i for i in recorded if i.get("ref") and i.get("changes") == "none" and i["status"] != "failed"
    ]
    summed = len(unchanged) > LISTED_UNCHANGED
    lines: list[str] = []
    shown_tags: set[str] = set()
    for item in recorded:
        if summed and item in unchanged:
            continue
        if item.get("ref"):
            lines.append(f"    → {item['ref']} → {short_sha} ({item['changes']})")
        if item["tag"] not in shown_tags or item["status"] == "failed":
            shown_tags.add(item["tag"])
            lines.append(f"    → {item['tag']}" + (" [red](failed)[/]" if item["status"] == "failed" else ""))
    if summed:
        names = [str(i.get("component") or i["ref"].rsplit("/", 1)[-1]) for i in unchanged]
        lines.append(
            f"    → {len(names)} refs of components whose inputs did not change → {short_sha} (none): "
            + listed(names)
        )
        for tag in dict.fromkeys(i["tag"] for i in unchanged):
            if tag not in shown_tags:
                shown_tags.add(tag)
                lines.append(f"    → {tag}")
    return lines


def _summary_row(component: str, steps: dict[str, tuple[Any, str]]) -> dict[str, str]:
    """One component's outcome from its last step: apply, else the image's test, build or reuse."""
    kind = next((k for k in ("apply", "test", "build", "reuse") if k in steps), None)
    row = {
        "component": component.split("/", 1)[1],
        "outcome": "not run",
        "image": "",
        "error": "",
        "plan": "",
    }
    if kind is None:
        return row
    task, how = steps[kind]
    values = getattr(task, "values", None) or {}
    plan = (getattr(steps["plan"][0], "values", None) or {}) if "plan" in steps else {}
    if kind == "apply" and how != "uptodate" and plan.get("has_changes"):
        row["plan"] = "\n".join(shown_lines(plan.get("plan_summary") or [], plan.get("workdir")))
    row["image"] = str((plan if kind == "apply" else values).get("image") or "")
    status = values.get("status")
    if how == "error" or status == "failed":
        row["outcome"] = "failed"
        row["error"] = str(values.get("error") or "")
    elif how == "uptodate":
        row["outcome"] = "up to date"
    elif status == "skipped":
        row["outcome"] = f"skipped ({values['reason']})" if values.get("reason") else "skipped"
    elif status == "applied":
        if not plan.get("has_changes", True):
            row["outcome"] = "no changes"
        else:
            counts = change_phrase(plan).removeprefix("changes")  # " (1 to add, …)" when known
            row["outcome"] = f"applied{counts}"
    elif status == "built":
        row["outcome"] = "image reused" if values.get("reused") or kind == "reuse" else "built"
    return row


def change_phrase(values: dict[str, Any]) -> str:
    """`no changes`, `changes`, or with Terraform's counts `changes (1 to add, 0 to change, 0 to destroy)`."""
    if not values.get("has_changes"):
        return "no changes"
    counts = values.get("changes")
    if not isinstance(counts, dict):
        return "changes"
    if not any(counts.values()):
        return "changes (outputs only)"
    return "changes (" + ", ".join(f"{n} to {verb}" for verb, n in counts.items()) + ")"


def preview_phrase(values: dict[str, Any]) -> str:
    """What a plan says a rollout would do: `change_phrase`, and in a preview the images that
    would be built again (the component changes with them) or the dependencies that would change
    first (it was planned against their current outputs)."""
    rebuilt = values.get("rebuilt")
    if rebuilt:
        images = ", ".join(rebuilt)
        if values.get("has_changes"):
            return f"{change_phrase(values)} and the {images} image would be rebuilt (its source changed)"
        return f"changes: the {images} image would be rebuilt (its source changed)"
    follows = values.get("follows")
    if follows:
        return f"no changes against the current outputs of {', '.join(follows)}, which would change first"
    return change_phrase(values)


def _would_change(values: dict[str, Any]) -> bool:
    return values.get("status") == "planned" and bool(values.get("has_changes") or values.get("rebuilt"))


def _may_change(values: dict[str, Any]) -> bool:
    return _would_change(values) or bool(values.get("follows"))


def _preview_counts(outcomes: list[dict[str, Any]]) -> tuple[int, int, int, int]:
    """(would change, may change after their dependencies, skipped, failed) among a preview's components."""
    changing = sum(1 for v in outcomes if _would_change(v))
    following = sum(1 for v in outcomes if not _would_change(v) and v.get("follows"))
    skipped = sum(1 for v in outcomes if v.get("status") == "skipped")
    failed = sum(1 for v in outcomes if v.get("status") == "failed")
    return changing, following, skipped, failed


def _counted(changing: int, following: int, skipped: int) -> str:
    counts = f"{changing} component(s) would change"
    if following:
        counts += f", {following} may change after their dependencies"
    return counts + (f", {skipped} skipped" if skipped else "")


def shown_lines(lines: list[str], workdir: str | None = None) -> list[str]:
    """A plan's lines, at most `SHOWN_LINES` of them (then how many more, and where they all are)."""
    if len(lines) <= SHOWN_LINES:
        return list(lines)
    where = f": {workdir}/atmos-plan.log" if workdir else ""
    return [*lines[:SHOWN_LINES], f"… and {len(lines) - SHOWN_LINES} more{where}"]


def _code(text: str) -> str:
    """A table cell in code style; image references and tag names hold no `|` or backtick."""
    return f"`{text}`" if text else "—"


def _details(summary: str, text: str) -> list[str]:
    """A collapsed block of plain text, as GitHub renders `<details>`."""
    return [f"<details><summary>{summary}</summary>", "", _fenced(text), "</details>", ""]


def _fenced(text: str) -> str:
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
    return f"{fence}text\n{text.rstrip()}\n{fence}"


def job_summary(
    meta: dict[str, Any], rows: list[dict[str, str]], summary: dict[str, Any] | None, errors: list[str]
) -> str:
    """A rollout as GitHub-flavoured Markdown: heading, one table row per component, failures."""
    sha = meta["git_sha"][:7]
    how = ""
    if meta.get("promoted_from"):
        how = f" (promoted from {meta['promoted_from']})"
    elif meta.get("rollback"):
        how = " (rollback)"
    failed = [row for row in rows if row["outcome"] == "failed"]
    tags = {r["component"]: r["tag"] for r in (summary or {}).get("recorded", [])}
    texts = (summary or {}).get("failed", {})
    if failed:
        verdict = f"❌ Rollout failed: {len(failed)} of {len(rows)} component(s) failed."
    elif summary is None:
        verdict = "❌ Rollout failed: nothing was recorded."
    elif not tags:
        verdict = f"✅ Rollout complete: {len(rows)} component(s), nothing new to record."
    else:
        verdict = f"✅ Rollout complete: {len(rows)} component(s), {len(tags)} recorded."
    lines = [
        "",
        f"### {meta['deployment']} → {meta['target']} at `{sha}`{how}",
        "",
        verdict,
        "",
        "| Component | Outcome | Image | Tag |",
        "|---|---|---|---|",
    ]
    for row in rows:
        outcome = f"**{row['outcome']}**" if row["outcome"] == "failed" else row["outcome"]
        tag = tags.get(row["component"], "")
        lines.append(f"| `{row['component']}` | {outcome} | {_code(row['image'])} | {_code(tag)} |")
    lines.append("")
    for row in rows:
        if row.get("plan"):
            lines += _details(f"{row['component']}: {row['outcome']}", row["plan"])
    for row in failed:
        text = texts.get(row["component"]) or row["error"] or "failed"
        lines += _details(f"{row['component']} failed", text)
    if summary is None and errors:
        lines += _details("errors", "\n".join(errors))
    return "\n".join(lines)


def preview_summary(
    meta: dict[str, Any], planned: dict[str, dict[str, Any] | None], errors: list[str]
) -> str:
    """A preview as GitHub-flavoured Markdown, for a pull request's checks: what a rollout would
    change, one row per component, failures with their text."""
    sha = meta["git_sha"][:7]
    dirty = " (with uncommitted changes)" if meta.get("dirty") else ""
    outcomes = [values or {} for values in planned.values()]
    changing, following, skipped, failed = _preview_counts(outcomes)
    rebuilt = [name for name, image in meta.get("images", {}).items() if rebuilds(image)]
    if failed or (errors and not outcomes):
        verdict = f"❌ Plan failed: {failed} component(s) could not be planned."
    else:
        verdict = (
            f"📋 {changing} of {len(planned)} component(s) would change"
            + (f", {following} may change after their dependencies" if following else "")
            + (f", {skipped} skipped." if skipped else ".")
        )
    if rebuilt:
        verdict += f" Image(s) {', '.join(f'`{name}`' for name in rebuilt)} would be rebuilt."
    lines = [
        "",
        f"### Plan: {meta['deployment']} → {meta['target']} at `{sha}`{dirty}",
        "",
        verdict + " Nothing was applied or recorded.",
        "",
        "| Component | Plan | Image |",
        "|---|---|---|",
    ]
    failures = []
    shown: list[tuple[str, str]] = []
    for component, values in planned.items():
        name = component.split("/", 1)[1]
        values = values or {}
        status = values.get("status")
        if status == "planned":
            outcome = preview_phrase(values)
            if values.get("has_changes") and values.get("plan_summary"):
                text = "\n".join(shown_lines(values["plan_summary"], values.get("workdir")))
                shown.append((f"{name}: {outcome}", text))
            outcome = f"**{outcome}**" if _would_change(values) else outcome
        elif status == "skipped":
            outcome = f"skipped ({values['reason']})" if values.get("reason") else "skipped"
        elif status == "failed":
            outcome = "**failed**"
            after = f"not attempted, {values['after']} failed" if values.get("after") else "failed"
            failures.append((name, str(values.get("error") or after)))
        else:
            outcome = "not planned"
        lines.append(f"| `{name}` | {outcome} | {_code(str(values.get('image') or ''))} |")
    lines.append("")
    for summary, text in shown:
        lines += _details(summary, text)
    for name, text in failures:
        lines += _details(f"{name} failed", text)
    if errors and not failures:
        lines += _details("errors", "\n".join(errors))
    return "\n".join(lines)

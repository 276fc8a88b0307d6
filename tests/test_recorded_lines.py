"""What a rollout prints about what it recorded: pure, no I/O."""

from atmos_tasks.reporter import LISTED_UNCHANGED, recorded_lines

ROLLOUT_TAG = "atmos/rollouts/app/dev/2026-12-03T16-01-04Z"


def item(name: str, changes: str, tag: str = ROLLOUT_TAG, status: str = "success") -> dict:
    ref = None if status == "failed" else f"refs/atmos/deployments/app/dev/{name}"
    return {"component": name, "status": status, "changes": changes, "tag": tag, "ref": ref}


def test_few_unchanged_components_are_listed_one_ref_each_with_the_rollout_tag_once():
    own = "atmos/deployments/app/dev/c1/2026-12-03T16-01-04Z"
    recorded = [item("c0", "none"), item("c1", "applied", own), item("c2", "none")]
    assert recorded_lines(recorded, "93072c3") == [
        "    → refs/atmos/deployments/app/dev/c0 → 93072c3 (none)",
        f"    → {ROLLOUT_TAG}",
        "    → refs/atmos/deployments/app/dev/c1 → 93072c3 (applied)",
        f"    → {own}",
        "    → refs/atmos/deployments/app/dev/c2 → 93072c3 (none)",
    ]


def test_many_unchanged_components_are_summed_up_in_one_line_and_changed_ones_stay_listed():
    own = "atmos/deployments/app/dev/c150/2026-12-03T16-01-04Z"
    names = [f"c{i:03d}" for i in range(300)]
    recorded = [item(n, "applied", own) if n == "c150" else item(n, "none") for n in names]
    lines = recorded_lines(recorded, "93072c3")
    assert lines == [
        "    → refs/atmos/deployments/app/dev/c150 → 93072c3 (applied)",
        f"    → {own}",
        "    → 299 refs of components whose inputs did not change → 93072c3 (none): "
        f"c000, c001, c002, c003, c004, … and {299 - LISTED_UNCHANGED} more",
        f"    → {ROLLOUT_TAG}",
    ]


def test_a_failed_component_keeps_its_own_line_and_marks_its_tag():
    failed_tag = "atmos/deployments/app/dev/c9/2026-12-03T16-01-04Z"
    recorded = [item(f"c{i}", "none") for i in range(LISTED_UNCHANGED + 1)]
    recorded.append(item("c9", "applied", failed_tag, status="failed"))
    lines = recorded_lines(recorded, "93072c3")
    assert f"    → {failed_tag} [red](failed)[/]" in lines
    assert not any("refs/atmos/deployments/app/dev/c9" in line for line in lines)
    assert lines[-2].startswith(
        f"    → {LISTED_UNCHANGED + 1} refs of components whose inputs did not change"
    )

"""`refnames` decides as the real `git check-ref-format` does, for any name hypothesis can think of."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from atmos_tasks.refnames import refname_problem, segment_problem

# Characters Git's rules are about, and any other character (control characters and non-ASCII too).
HOSTILE = [*"./@{}~^:?*[\\ -_", "lock", ".lock", "..", "@{", "\x7f", "\n", "\t", "\x01"]
names = st.lists(
    st.sampled_from(HOSTILE)
    | st.sampled_from("abz09")
    # Git cannot be asked about a lone surrogate (not encodable); `test_a_lone_surrogate_is_refused`.
    | st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
    max_size=10,
).map("".join)


def git_accepts(name: str, *options: str) -> bool:
    proc = subprocess.run(["git", "check-ref-format", *options, name], capture_output=True)
    return proc.returncode == 0


CHECKED = settings(deadline=None, database=None)


@CHECKED
@given(names)
@example("refs/heads/x.lock")
@example("refs/heads/trail.")
@example("refs/heads/a..b")
@example("refs/heads/a@{b")
@example("refs/heads/.hidden")
@example("refs/heads//double")
@example("refs/heads/tail/")
@example("@")
@example("")
def test_refname_problem_agrees_with_git_check_ref_format(name: str) -> None:
    # `git check-ref-format` reads a leading '-' as an option: such names are asked inside a ref.
    if name.startswith("-"):
        name = "refs/" + name
    for onelevel in (False, True):
        options = ("--allow-onelevel",) if onelevel else ()
        ours = refname_problem(name, allow_onelevel=onelevel)
        assert (ours is None) == git_accepts(name, *options), (name, onelevel, ours)


@CHECKED
@given(names)
@example("x.lock")
@example("trail.")
@example("@")
@example("ecs%2Fservice-api")
def test_a_segment_is_one_git_accepts_alone_last_and_in_the_middle_of_a_ref(segment: str) -> None:
    ours = segment_problem(segment)
    if "/" in segment:
        assert ours == "contains '/'"
        return
    accepted = git_accepts(f"refs/atmos/{segment}") and git_accepts(f"refs/atmos/{segment}/stamp")
    if not segment.startswith("-"):  # (git would read it as an option)
        accepted = accepted and git_accepts(segment, "--allow-onelevel")
    assert (ours is None) == accepted, (segment, ours)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("x.lock", "ends with '.lock'"),
        ("trail.", "ends with '.'"),
        ("a..b", "contains '..'"),
        ("a\nb", "contains the control character '\\n'"),
        ("a b", "contains ' '"),
        ("a@{b", "contains '@{'"),
        ("@", "is '@' alone"),
        (".x", "starts with '.'"),
        ("a/b", "contains '/'"),
        ("", "is empty"),
    ],
)
def test_segment_problems_say_what_is_wrong(name: str, reason: str) -> None:
    assert segment_problem(name) == reason


def test_a_lone_surrogate_is_refused() -> None:
    """A YAML escape ("\\ud800") can put one in a name; Git could not even be given it."""
    assert refname_problem("refs/heads/a\ud800b") is not None
    assert segment_problem("\udfff") is not None

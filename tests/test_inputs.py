"""What a compilation observes (`inputs`): paths are keyed as `Path.absolute` writes them."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from atmos_tasks import inputs

PARTS = st.sampled_from(["a", "b.tf", ".", "..", "", ".hidden", "x.", "/", "//"])


@given(st.booleans(), st.lists(PARTS, max_size=6))
def test_a_path_is_keyed_as_path_absolute_writes_it(rooted: bool, parts: list[str]) -> None:
    text = ("/" if rooted else "") + "/".join(parts)
    expected = str(Path(text).absolute())
    assert inputs._absolute(text) == expected
    assert inputs._absolute(Path(text)) == expected


def test_files_and_trees_observed_by_any_spelling_are_one_entry(tmp_path: Path) -> None:
    folder = tmp_path / "module"
    folder.mkdir()
    (folder / "main.tf").write_text("")
    with inputs.observing() as observed:
        inputs.tree(str(folder), "d1")
        inputs.tree(f"{folder}/", "d2")
        inputs.tree(folder, "d3")
        inputs.file(f"{folder}//main.tf")
        inputs.file(folder / "main.tf")
    assert observed.trees == {str(folder): "d1"}
    assert list(observed.files) == [str(folder / "main.tf")]

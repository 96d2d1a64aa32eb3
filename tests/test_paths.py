"""`keras_geo.paths.atomic_write`: a file or a whole folder appears complete or not at all."""

import pytest

from keras_geo import paths
from keras_geo.errors import StorageError


def test_a_folder_replaces_a_non_empty_folder_whole(tmp_path):
    target = tmp_path / "export"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with paths.atomic_write(target) as tmp:
        tmp.mkdir()
        (tmp / "new.txt").write_text("new")
        assert (target / "old.txt").is_file()  # Untouched until the block succeeds.
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["export"]  # Nothing left aside.


def test_a_failed_block_leaves_the_old_folder(tmp_path):
    target = tmp_path / "export"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(StorageError), paths.atomic_write(target) as tmp:
        tmp.mkdir()
        raise OSError(28, "No space left on device")
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["export"]


def test_the_old_folder_goes_back_when_the_new_one_cannot_move_in(tmp_path, monkeypatch):
    target = tmp_path / "export"
    target.mkdir()
    (target / "old.txt").write_text("old")
    real_replace = paths.os.replace

    def replace(src, dst):
        if str(src).endswith("-export") and "-old-" not in str(src):
            raise OSError(5, "Input/output error")
        real_replace(src, dst)

    monkeypatch.setattr(paths.os, "replace", replace)
    with pytest.raises(StorageError), paths.atomic_write(target) as tmp:
        tmp.mkdir()
    assert [p.name for p in target.iterdir()] == ["old.txt"]


def test_an_export_removes_its_own_leftovers_only(tmp_path):
    from keras_geo import export

    out = tmp_path / "1"
    mine = [tmp_path / ".tmp-41-1", tmp_path / ".tmp-42-old-1", tmp_path / ".1.k1ll3d_x"]
    others = [tmp_path / ".tmp-43-x-1", tmp_path / ".tmp-44-2"]
    for folder in mine + others:
        folder.mkdir()
    export.remove_leftovers(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in others)

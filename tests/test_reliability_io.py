"""Issue 15, the file holes: damaged training-state values, NaN/inf weights,
``save_weights``' atomic writer, hostile ``.weights.h5`` trees.

Each test failed on the code before the fix (see docs/reliability.md).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import h5py
import numpy as np
import pytest
from reliability_helpers import assert_same_state, small_data, small_model, snapshot

from numvgg.callbacks import ModelCheckpoint
from numvgg.errors import TrainingStateError, WeightFileError
from numvgg.io import atomic
from numvgg.io.checks import check_finite_weights
from numvgg.io.weights import load_weights, save_weights


def trained_state(tmp_path, optimizer="adam"):
    model = small_model(optimizer=optimizer)
    x, y = small_data(16)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "run.state.h5"
    model.save_training_state(path)
    return model, path


def overwrite(path, dataset, value):
    with h5py.File(path, "a") as f:
        del f[dataset]
        f[dataset] = value


# -- 3. damaged training-state values ----------------------------------------------------------
@pytest.mark.parametrize(
    "entry, value, match",
    [
        ("iterations", np.float64("nan"), r"'iterations' holds 1 NaN"),
        ("iterations", np.int64(-3), r"'iterations' .*whole number >= 0"),
        ("learning_rate", np.float32("nan"), r"'learning_rate' holds 1 NaN"),
        ("learning_rate", np.float32(-1e-3), r"'learning_rate' should be a learning rate >= 0"),
        ("velocity/0", None, r"'velocity/0' .*negative values"),
        ("momentum/1", None, r"'momentum/1' holds 1 NaN"),
    ],
)
def test_damaged_optimizer_values_are_refused_by_name(tmp_path, entry, value, match):
    model, path = trained_state(tmp_path)
    state = model.optimizer.get_state()
    keys = list(state)
    dataset = f"optimizer/vars/{keys.index(entry)}"
    if value is None:
        value = state[entry].copy()
        value.flat[0] = -1.0 if entry.startswith("velocity") else np.nan
    overwrite(path, dataset, value)
    fresh = small_model()
    fresh.fit(*small_data(8), epochs=1, batch_size=8, verbose=0)
    before = snapshot(fresh)
    with pytest.raises(TrainingStateError, match=match) as info:
        fresh.load_training_state(path)
    assert str(path) in str(info.value)
    assert_same_state(before, fresh)


def test_a_sound_state_still_loads(tmp_path):
    model, path = trained_state(tmp_path, optimizer="rmsprop")
    fresh = small_model(optimizer="rmsprop")
    fresh.load_training_state(path)
    assert_same_state(model, fresh)


# -- 4. NaN / inf weights ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad, match", [(np.nan, "1 NaN"), (np.inf, "1 infinite"), (1e39, "overflow float32")]
)
def test_nonfinite_weights_in_a_file_are_refused_naming_layer_and_weight(tmp_path, bad, match):
    model = small_model(compile=False)
    path = tmp_path / "w.weights.h5"
    save_weights(model, path)
    kernel = model.layers[0].params["kernel"].astype(np.float64)
    kernel.flat[5] = bad
    overwrite(path, "layers/conv2d/vars/0", kernel)
    target = small_model(compile=False, dropout_seed=1)
    before = snapshot(target)
    with pytest.raises(WeightFileError, match=match) as info:
        load_weights(target, path)
    message = str(info.value)
    assert f"'{target.layers[0].name}/kernel'" in message and str(path) in message
    assert_same_state(before, target)


def test_nonfinite_weights_in_a_legacy_file_are_refused(tmp_path):
    model = small_model(compile=False)
    path = tmp_path / "w.h5"
    save_weights(model, path)
    name = model.layers[-1].name
    with h5py.File(path, "a") as f:
        group = f[name]
        bias_name = [n.decode() for n in group.attrs["weight_names"]][1]
        del group[bias_name]
        group[bias_name] = np.array([np.nan], np.float32)
    target = small_model(compile=False)
    with pytest.raises(WeightFileError, match=rf"'{target.layers[-1].name}/bias'.*'/{name}/.*1 NaN"):
        load_weights(target, path)


def test_check_finite_weights_names_the_source():
    check_finite_weights("fc1", "kernel", np.ones((2, 2)))
    with pytest.raises(WeightFileError, match=r"'fc1/kernel' from set_weights\(\): it holds 2 NaN"):
        check_finite_weights("fc1", "kernel", np.array([np.nan, np.nan, 1.0]), "set_weights()")
    with pytest.raises(WeightFileError, match="overflow float32"):
        check_finite_weights("fc1", "bias", np.array([3.5e38]))
    check_finite_weights("fc1", "bias", np.array([3.4e38]))  # float32 holds it


# -- 5. save_weights: the atomic writer -----------------------------------------------------------
def test_a_255_byte_name_can_be_saved(tmp_path):
    model = small_model(compile=False)
    name = "w" * (255 - len(".weights.h5")) + ".weights.h5"
    save_weights(model, tmp_path / name)
    load_weights(small_model(compile=False), tmp_path / name)
    assert os.listdir(tmp_path) == [name]


def test_a_name_over_the_limit_gets_the_real_reason(tmp_path):
    with pytest.raises(WeightFileError, match="too long") as info:
        save_weights(small_model(compile=False), tmp_path / ("w" * 300 + ".h5"))
    assert ".tmp" not in str(info.value)


def test_cleanup_failure_does_not_hide_the_real_error(tmp_path, monkeypatch):
    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    def cannot_remove(path):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(atomic.os, "replace", disk_full)
    monkeypatch.setattr(atomic.os, "remove", cannot_remove)
    with pytest.raises(WeightFileError, match="no space left on device") as info:
        save_weights(small_model(compile=False), tmp_path / "w.h5")
    assert isinstance(info.value.__cause__, OSError) and info.value.__cause__.errno == 28


def test_save_writes_through_a_symlink_and_keeps_the_mode(tmp_path):
    model = small_model(compile=False)
    real = tmp_path / "store" / "real.weights.h5"
    real.parent.mkdir()
    save_weights(model, real)
    os.chmod(real, 0o600)
    link = tmp_path / "latest.weights.h5"
    link.symlink_to(real)
    other = small_model(compile=False, dropout_seed=2)
    other.layers[0].params["kernel"][...] = 0.25
    save_weights(other, link)
    assert link.is_symlink()
    assert stat.S_IMODE(os.stat(real).st_mode) == 0o600
    loaded = small_model(compile=False)
    load_weights(loaded, real)
    assert np.all(loaded.layers[0].params["kernel"] == 0.25)


def test_save_fsyncs_the_file(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    save_weights(small_model(compile=False), tmp_path / "w.weights.h5")
    assert len(synced) >= 1


def test_stale_temp_files_of_dead_processes_are_cleaned(tmp_path):
    target = tmp_path / "w.weights.h5"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".w.weights.h5~{dead_pid}-0123abcd.tmp"
    alive = tmp_path / f".w.weights.h5~{os.getppid()}-0123abcd.tmp"  # a live process's save
    foreign = tmp_path / f".other.h5~{dead_pid}-0123abcd.tmp"  # another target's
    for path in (stale, alive, foreign):
        path.write_bytes(b"x" * 100)
    save_weights(small_model(compile=False), target)
    assert sorted(os.listdir(tmp_path)) == sorted([target.name, alive.name, foreign.name])


def test_model_checkpoint_weights_only_uses_the_same_writer(tmp_path):
    model = small_model()
    x, y = small_data(16)
    name = "c" * (255 - len(".weights.h5")) + ".weights.h5"
    model.fit(
        x,
        y,
        epochs=1,
        batch_size=8,
        verbose=0,
        callbacks=[ModelCheckpoint(str(tmp_path / name), save_weights_only=True)],
    )
    assert os.listdir(tmp_path) == [name]


def test_training_state_keeps_the_mode_and_follows_links(tmp_path):
    model, path = trained_state(tmp_path)
    os.chmod(path, 0o640)
    link = tmp_path / "link.state.h5"
    link.symlink_to(path)
    model.save_training_state(link)
    assert link.is_symlink() and stat.S_IMODE(os.stat(path).st_mode) == 0o640


# -- 10. hostile .weights.h5 trees ---------------------------------------------------------------------
def test_a_hard_link_cycle_is_a_weights_file_error(tmp_path):
    model = small_model(compile=False)
    path = tmp_path / "cycle.weights.h5"
    save_weights(model, path)
    with h5py.File(path, "a") as f:
        group = f["layers/conv2d"]
        group.create_group("layers")["loop"] = group  # a hard link to itself
    before = snapshot(model)
    with pytest.raises(WeightFileError, match="hard link") as info:
        load_weights(model, path)
    assert str(path) in str(info.value)
    assert_same_state(before, model)


def test_a_3000_deep_tree_is_a_weights_file_error(tmp_path):
    path = tmp_path / "deep.weights.h5"
    with h5py.File(path, "w") as f:
        group = f
        for _ in range(3000):
            group = group.create_group("layers").create_group("sequential")
    model = small_model(compile=False)
    before = snapshot(model)
    with pytest.raises(WeightFileError, match="nested more than 64") as info:
        load_weights(model, path)
    assert str(path) in str(info.value)
    assert_same_state(before, model)


# -- 12. BackupAndRestore when its state file became a folder ---------------------------------------
def test_backup_state_path_that_became_a_folder_is_a_damaged_backup(tmp_path):
    from numvgg.callbacks import BackupAndRestore

    backup = tmp_path / "backup"
    x, y = small_data(16)

    def run(epochs):
        model = small_model()
        callback = BackupAndRestore(backup, double_checkpoint=True, delete_checkpoint=False)
        return model.fit(x, y, epochs=epochs, batch_size=8, verbose=0, callbacks=[callback])

    run(2)
    state = backup / "latest.state.h5"
    state.unlink()
    state.mkdir()
    with pytest.warns(UserWarning) as record:
        history = run(4)
    messages = " ".join(str(w.message) for w in record)
    assert "restoring the previous backup" in messages and "moved it to" in messages
    assert history.epoch == [1, 2, 3]  # the .bkp was taken after epoch 1
    assert state.is_file() and (backup / "latest.state.h5.damaged").is_dir()

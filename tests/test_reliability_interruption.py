"""Interrupted training: nothing is lost, and resuming equals never stopping.

The reference is one uninterrupted ``fit`` of the small model (shuffled
batches, Dropout, Adam, validation). Every interrupted run -- a crash, Ctrl-C
inside or outside a step, a real SIGINT to another process -- is resumed in a
model built from a *different* seed (so only the restored state can make it
right) and must end with bit-identical weights and optimizer state.

The kill test runs a process that saves a 24 MB weights file in a loop and
``kill -9``s it at random moments; the file on disk must always be a complete
earlier version, never a mix.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from reliability_helpers import assert_same_state, small_data, small_model, snapshot

from numvgg.callbacks import BackupAndRestore, Callback, ModelCheckpoint
from numvgg.errors import TrainingStateError
from numvgg.random import set_random_seed

EPOCHS = 4
BATCH = 8
X, Y = small_data(40)  # 5 batches per epoch
VAL = small_data(8, seed=1)
TESTS = Path(__file__).parent


def fresh(seed=1, **kwargs):
    set_random_seed(seed)
    return small_model(**kwargs)


def fit(model, callbacks=(), **kwargs):
    return model.fit(
        X,
        Y,
        batch_size=BATCH,
        epochs=EPOCHS,
        validation_data=VAL,
        verbose=0,
        callbacks=list(callbacks),
        **kwargs,
    )


@pytest.fixture(scope="module")
def reference():
    """``(state snapshot, history)`` of the uninterrupted run."""
    model = fresh()
    history = fit(model)
    return snapshot(model), history.history


class CrashAt(Callback):
    """Raise ``error`` after batch ``batch`` of epoch ``epoch`` (or before it, ``when='begin'``)."""

    def __init__(self, epoch, batch, error=RuntimeError("simulated crash"), when="end"):
        super().__init__()
        self.target, self.error, self.when = (epoch, batch), error, when
        self.epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self.when == "begin" and (self.epoch, batch) == self.target:
            raise self.error

    def on_train_batch_end(self, batch, logs=None):
        if self.when == "end" and (self.epoch, batch) == self.target:
            raise self.error


# -- resuming after a crash -------------------------------------------------------------------
def test_model_checkpoint_state_and_initial_epoch_resume_exactly(reference, tmp_path):
    path = tmp_path / "ckpt.state.h5"
    with pytest.raises(RuntimeError, match="simulated"):
        fit(fresh(), [ModelCheckpoint(path), CrashAt(2, 1)])
    model = fresh(seed=99)
    initial_epoch = model.load_training_state(path)
    assert initial_epoch == 2  # epochs 0 and 1 were saved
    history = fit(model, initial_epoch=initial_epoch)
    assert_same_state(reference[0], model)
    assert history.epoch == [2, 3]
    for key, values in history.history.items():  # whole epochs: identical logs
        assert values == reference[1][key][2:], key


@pytest.mark.parametrize("save_freq, crash", [(3, (1, 4)), (3, (2, 1)), (2, (0, 2)), ("epoch", (3, 0))])
def test_backup_and_restore_resumes_mid_epoch_exactly(reference, tmp_path, save_freq, crash):
    backup = BackupAndRestore(tmp_path / "backup", save_freq=save_freq)
    with pytest.raises(RuntimeError, match="simulated"):
        fit(fresh(), [backup, CrashAt(*crash)])
    assert (tmp_path / "backup" / "latest.state.h5").exists()  # a failed fit keeps its backup
    model = fresh(seed=99)
    history = fit(model, [BackupAndRestore(tmp_path / "backup", save_freq=save_freq)])
    assert_same_state(reference[0], model)
    assert history.history["val_loss"] == reference[1]["val_loss"][history.epoch[0] :]
    assert not (tmp_path / "backup").exists()  # completed: backup deleted


def test_model_checkpoint_every_few_batches_resumes_mid_epoch(reference, tmp_path):
    path = tmp_path / "ckpt.state.h5"
    with pytest.raises(RuntimeError):
        fit(fresh(), [ModelCheckpoint(path, save_freq=4), CrashAt(1, 4)])
    model = fresh(seed=7)
    initial_epoch = model.load_training_state(path)  # saved after 8 batches: epoch 1, step 3
    assert initial_epoch == 1 and model.training_progress.step == 3
    fit(model, initial_epoch=initial_epoch)
    assert_same_state(reference[0], model)


def test_forgetting_initial_epoch_after_loading_warns(tmp_path):
    path = tmp_path / "ckpt.state.h5"
    with pytest.raises(RuntimeError):
        fit(fresh(), [ModelCheckpoint(path), CrashAt(2, 0, when="begin")])
    model = fresh()
    model.load_training_state(path)
    with pytest.warns(
        UserWarning,
        match=r"restored the state at epoch 2 .* initial_epoch=0.*"
        r"Pass initial_epoch=2",
    ):
        model.fit(X, Y, batch_size=BATCH, epochs=1, verbose=0)


# -- Ctrl-C -------------------------------------------------------------------------------------
def sigint_during_update(model, at_update, times=1):
    """Make the ``at_update``-th optimizer update raise SIGINT ``times`` times before it runs."""
    original = model.optimizer.apply
    calls = []

    def apply(grads, variables=None):
        calls.append(1)
        if len(calls) == at_update:
            for _ in range(times):
                signal.raise_signal(signal.SIGINT)  # Python runs the handler right here
        return original(grads, variables)

    model.optimizer.apply = apply


def test_ctrl_c_inside_a_step_finishes_the_batch_saves_and_resumes_exactly(reference, tmp_path, capsys):
    model = fresh()
    sigint_during_update(model, at_update=8)  # epoch 1, batch 2
    with pytest.raises(KeyboardInterrupt) as info:
        fit(model, [BackupAndRestore(tmp_path / "backup")])
    assert model.optimizer.iterations == 8  # the interrupted update completed
    assert "finishing this batch" in capsys.readouterr().err
    note = " ".join(info.value.__notes__)
    assert "stopped cleanly at epoch 2/4, after 3/5 batch(es)" in note
    assert "BackupAndRestore saved the training state" in note
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    resumed = fresh(seed=5)
    fit(resumed, [BackupAndRestore(tmp_path / "backup")])
    assert_same_state(reference[0], resumed)


def test_ctrl_c_outside_a_step_also_saves_a_consistent_state(reference, tmp_path):
    crash = CrashAt(3, 2, error=KeyboardInterrupt(), when="begin")
    with pytest.raises(KeyboardInterrupt) as info:
        fit(fresh(), [BackupAndRestore(tmp_path / "backup", save_freq=100), crash])
    assert "after 2/5 batch(es)" in " ".join(info.value.__notes__)
    resumed = fresh(seed=5)
    fit(resumed, [BackupAndRestore(tmp_path / "backup", save_freq=100)])
    assert_same_state(reference[0], resumed)


def test_second_ctrl_c_stops_at_once_and_saves_nothing(tmp_path):
    backup = tmp_path / "backup"
    model = fresh()
    sigint_during_update(model, at_update=7, times=2)  # epoch 1, batch 1
    with pytest.raises(KeyboardInterrupt) as info:
        fit(model, [BackupAndRestore(backup)])
    assert model.optimizer.iterations == 6  # update 7 never ran
    assert "inside a training step" in " ".join(info.value.__notes__)
    # The backup is the one of epoch 0's end: resuming from it starts epoch 1 afresh.
    assert fresh(seed=5).load_training_state(backup / "latest.state.h5") == 1


def test_without_our_handler_an_interrupt_inside_a_step_is_reported_torn(tmp_path):
    """A debugger or notebook may own SIGINT; then the interrupt arrives mid-step as usual."""

    def foreign_handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, foreign_handler)
    try:
        model = fresh()
        sigint_during_update(model, at_update=3)
        with pytest.raises(KeyboardInterrupt) as info:
            fit(model, [BackupAndRestore(tmp_path / "backup", save_freq=1)])
    finally:
        signal.signal(signal.SIGINT, previous)
    assert "may be half-updated" in " ".join(info.value.__notes__)
    # The last backup is the one after update 2, not a torn state.
    restored = fresh(seed=5)
    restored.load_training_state(tmp_path / "backup" / "latest.state.h5")
    assert restored.optimizer.iterations == 2


CHILD_TRAINING = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[1])
    from reliability_helpers import small_data, small_model
    from numvgg.callbacks import BackupAndRestore, Callback
    from numvgg.random import set_random_seed

    class Slow(Callback):
        def on_train_batch_end(self, batch, logs=None):
            print("batch", flush=True)
            time.sleep(0.01)

    set_random_seed(1)
    model = small_model()
    x, y = small_data(40)
    model.fit(x, y, batch_size=8, epochs=4, validation_data=small_data(8, seed=1), verbose=0,
              callbacks=[BackupAndRestore(sys.argv[2]), Slow()])
    print("finished", flush=True)
""")


@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT to a child process")
def test_real_ctrl_c_in_another_process_then_resume(reference, tmp_path):
    script = tmp_path / "train.py"
    script.write_text(CHILD_TRAINING)
    backup = tmp_path / "backup"
    child = subprocess.Popen(
        [sys.executable, str(script), str(TESTS), str(backup)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for _ in range(7):  # well into epoch 2
        assert child.stdout.readline().strip() == "batch"
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert child.returncode != 0 and "finished" not in out
    assert "KeyboardInterrupt" in err and "stopped cleanly" in err and "BackupAndRestore saved" in err
    resumed = fresh(seed=42)
    history = fit(resumed, [BackupAndRestore(backup)])
    assert history.epoch[0] == 1
    assert_same_state(reference[0], resumed)


# -- BackupAndRestore's files -------------------------------------------------------------------
def test_double_checkpoint_falls_back_to_the_previous_backup(reference, tmp_path):
    backup = tmp_path / "backup"
    with pytest.raises(RuntimeError):
        fit(fresh(), [BackupAndRestore(backup, double_checkpoint=True), CrashAt(2, 3)])
    latest = backup / "latest.state.h5"
    assert (backup / "latest.state.h5.bkp").exists()
    latest.write_bytes(latest.read_bytes()[:1000])  # damaged, e.g. by a full disk
    model = fresh(seed=3)
    with pytest.warns(UserWarning, match=r"cannot be loaded .*truncated.*restoring the previous backup"):
        history = fit(model, [BackupAndRestore(backup, double_checkpoint=True)])
    assert history.epoch == [1, 2, 3]  # the previous backup: end of epoch 0
    assert_same_state(reference[0], model)


def test_a_damaged_backup_without_a_previous_one_is_an_error(tmp_path):
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "latest.state.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    model = fresh()
    before = snapshot(model)
    with pytest.raises(TrainingStateError, match="latest.state.h5"):
        fit(model, [BackupAndRestore(backup)])
    assert_same_state(before, model)


def test_completion_removes_only_the_backup_files(tmp_path):
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "notes.txt").write_text("mine")
    fit(fresh(), [BackupAndRestore(backup, double_checkpoint=True)])
    assert sorted(p.name for p in backup.iterdir()) == ["notes.txt"]
    fit(fresh(), [BackupAndRestore(tmp_path / "kept", delete_checkpoint=False)])
    assert (tmp_path / "kept" / "latest.state.h5").exists()


def test_restoring_into_another_model_is_an_error_not_a_silent_restart(tmp_path):
    with pytest.raises(RuntimeError):
        fit(fresh(), [BackupAndRestore(tmp_path / "b"), CrashAt(1, 0)])
    with pytest.raises(TrainingStateError, match="Adam optimizer but .* compiled with SGD"):
        fit(fresh(optimizer="sgd"), [BackupAndRestore(tmp_path / "b")])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(backup_dir=""), "Empty `backup_dir`"),
        (dict(backup_dir="b", save_freq=0), "save_freq"),
        (dict(backup_dir="b", save_freq="batch"), "save_freq"),
    ],
)
def test_backup_and_restore_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BackupAndRestore(**kwargs)


# -- kill -9 while saving ------------------------------------------------------------------------
CHILD_SAVING = textwrap.dedent("""
    import sys
    import numpy as np
    from numvgg.layers import Dense
    from numvgg.models import Sequential

    model = Sequential([Dense(1024, input_shape=(2048,)), Dense(2048), Dense(1024)])   # 6.3M floats
    model.compile(optimizer="sgd", loss="mse")
    path, how = sys.argv[1], sys.argv[2]
    version = 0
    while True:
        version += 1
        for w in model.weights:
            w[...] = version
        print(version, flush=True)                            # about to write this version
        if how == "state":
            model.save_training_state(path)
        else:
            model.save_weights(path)
""")


def saved_version(path, how):
    """The single value every weight in the file holds (a complete save has one)."""
    from numvgg.layers import Dense
    from numvgg.models import Sequential

    model = Sequential([Dense(1024, input_shape=(2048,)), Dense(2048), Dense(1024)])
    model.compile(optimizer="sgd", loss="mse")
    if how == "state":
        model.load_training_state(path)
    else:
        model.load_weights(path)
    values = {float(v) for w in model.weights for v in np.unique(w)}
    assert len(values) == 1, f"{path} mixes versions {sorted(values)[:5]}"
    return values.pop()


@pytest.mark.skipif(os.name != "posix", reason="kill -9")
@pytest.mark.parametrize(
    "name, how", [("model.weights.h5", "weights"), ("model.h5", "weights"), ("model.state.h5", "state")]
)
def test_kill_9_while_saving_never_damages_the_previous_file(tmp_path, name, how):
    script = tmp_path / "save_loop.py"
    script.write_text(CHILD_SAVING.replace("version = 0", "version = 100"))
    path = tmp_path / name
    # A good file first (version 1, written by the same loop, killed once it is done).
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_SAVING + "\n", str(path), how], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "1"
    assert child.stdout.readline().strip() == "2"  # version 1 is on disk
    child.kill()
    child.wait()
    for leftover in tmp_path.glob(f".{name}~*.tmp"):
        leftover.unlink()
    assert saved_version(path, how) in (1, 2)

    rng = np.random.default_rng(0)
    killed_mid_write = 0
    for _ in range(8):
        child = subprocess.Popen(
            [sys.executable, str(script), str(path), how], stdout=subprocess.PIPE, text=True
        )
        assert int(child.stdout.readline()) == 101
        time.sleep(rng.uniform(0.0, 0.3))
        child.kill()  # SIGKILL: no cleanup code runs
        child.wait()
        leftovers = list(tmp_path.glob(f".{name}~*.tmp"))
        killed_mid_write += bool(leftovers)
        version = saved_version(path, how)  # loads, all or nothing
        assert version in (1, 2) or version >= 101  # one whole version, never a mix
        for leftover in leftovers:
            leftover.unlink()
        if killed_mid_write >= 2:
            break
    assert killed_mid_write >= 1, "no kill landed during a write; the test proved nothing"

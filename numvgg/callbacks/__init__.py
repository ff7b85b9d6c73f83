"""Callbacks: code that runs at fixed points of ``fit``/``evaluate``/``predict``.

Same names, arguments and behaviour as ``keras.callbacks`` in Keras 3; each
module's docstring says where numvgg differs. One file per class:

========================  =====================================================
``Callback``              the base class and the list of hooks
``CallbackList``          what the training loop calls; adds History, ProgbarLogger
``History``               the per-epoch logs ``fit`` returns
``ProgbarLogger``         the ``Epoch 1/5`` lines and the progress bar
``EarlyStopping``         stop when a metric stalls
``ReduceLROnPlateau``     lower the learning rate when a metric stalls
``ModelCheckpoint``       save weights / training state while training
``BackupAndRestore``      back up the training state; resume after an interruption
``CSVLogger``             epoch logs to a CSV file
``TerminateOnNaN``        stop on a NaN or infinite loss
``LambdaCallback``        a callback from plain functions
========================  =====================================================
"""

from .backup_and_restore import BackupAndRestore
from .callback import HOOK_NAMES, Callback
from .callback_list import CallbackList, pythonify_logs
from .csv_logger import CSVLogger
from .early_stopping import EarlyStopping
from .history import History
from .lambda_callback import LambdaCallback
from .model_checkpoint import ModelCheckpoint
from .monitor import MonitorCallback
from .progbar_logger import ProgbarLogger
from .reduce_lr_on_plateau import ReduceLROnPlateau
from .terminate_on_nan import TerminateOnNaN

__all__ = [
    "Callback",
    "CallbackList",
    "History",
    "ProgbarLogger",
    "MonitorCallback",
    "EarlyStopping",
    "ReduceLROnPlateau",
    "ModelCheckpoint",
    "CSVLogger",
    "TerminateOnNaN",
    "LambdaCallback",
    "BackupAndRestore",
    "HOOK_NAMES",
    "pythonify_logs",
]
from .learning_rate_scheduler import LearningRateScheduler  # noqa: E402

__all__ += ["LearningRateScheduler"]

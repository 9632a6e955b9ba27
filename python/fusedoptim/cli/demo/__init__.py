"""fusedoptim's training demo: a NumPy MLP on MNIST-format data, trained with fusedoptim's optimizers.

This is the program behind ``fusedoptim train`` and ``fusedoptim tune``. It depends on the optimizer core,
never the other way round, and needs only NumPy; the ``demo`` extra adds a progress bar, plots and offline
digits, the ``tune`` extra Optuna.

Modules
-------
mlp
    :class:`~fusedoptim.cli.demo.mlp.MLP`: forward and backward by hand, torch.nn.Linear's initialisation.
data
    IDX files (gzipped or not), MNIST-format directories, the checksum-verified MNIST download, offline digits.
methods
    The optimizers the demo offers (one line each) and named methods (``momentum``, ``gd``, ``sgd1``, ...).
train
    The training loop: the seed's log lines, test accuracy and time split per epoch, stopping rules,
    checkpoints (``fusedoptim.save`` files) that resume bit for bit.
compare, tune, plot, cli
    ``--compare``, the Optuna study, the PNG plots, and the command line.

Example
-------
>>> from fusedoptim.cli.demo import TrainConfig, load_data, train  # doctest: +SKIP
>>> result = train(load_data("/usr/share/datasets/fashion-mnist").normalized("centered"),
...                TrainConfig(optimizer="adam", epochs=1))  # doctest: +SKIP
>>> result.history[-1].test_accuracy  # doctest: +SKIP
"""

from __future__ import annotations

from .data import Dataset, load_data
from .methods import METHODS, OPTIMIZERS
from .mlp import MLP
from .train import RunResult, TrainConfig, train

__all__ = ["METHODS", "MLP", "OPTIMIZERS", "Dataset", "RunResult", "TrainConfig", "load_data", "train"]

"""``TrainingConfig``: everything one training run needs, with the paper's values as defaults.

A run is a Wide ResNet trained with SGD (Nesterov momentum, weight decay) on a data set
for a number of epochs. The learning rate is not here: whoever drives the run (an RL env,
a fixed schedule) sets it for every call of ``Trainer.train``. Each field is checked once,
here, when the config is made; a bad value is refused with a message that names the
field, the value and what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from qan_env.training.datasets import SOURCES, DataFields
from qan_env.training.models import check_depth, parameter_count
from qan_env.validation import check_choice, check_flag, check_float, check_int, refuse

PRECISIONS = ("fp32", "bf16")
OPTIMIZERS = ("sgd", "schedulefree_sgd", "dadapt_sgd", "prodigy", "dog", "ldog")
# Upper bounds that keep a run inside a machine's memory and time (a setting above one is a
# typo, not an experiment): the synthetic set is generated in memory (100,000 images take
# 1.2 GB while generated), WRN-1000 and width 32 are far beyond the literature's.
MAX_SYNTHETIC_SIZE = 100_000
MAX_DEPTH = 1000
MAX_WIDEN_FACTOR = 32
MAX_BATCH_SIZE = 65_536
MAX_EPOCHS = 100_000
MAX_PARAMETERS = 100_000_000  # WRN-28-10, the largest of the WRN paper, has 36.5M


@dataclass(frozen=True)
class TrainingConfig:
    """One training run: data, network, optimizer, budget and where it runs."""

    dataset: str = "cifar10"
    """The data set: "cifar10", "cifar100", "svhn", "mnist", "fashion_mnist" (torchvision,
    from ``data_dir``), "digits" (scikit-learn's, no download), "synthetic" (generated, no
    download), or a name given to ``qan_env.register_dataset`` (in memory)."""
    data_dir: str = "~/.cache/qan_env"
    """Where torchvision's data sets are read from (and downloaded to)."""
    download: bool = False
    """Download a torchvision data set into ``data_dir`` when it is not there."""
    synthetic_train_size: int = 50_000
    """Training images of the synthetic set."""
    synthetic_test_size: int = 10_000
    """Test images of the synthetic set."""
    synthetic_seed: int = 0
    """The seed the synthetic set is generated from (its classes and its images)."""
    heldout_size: int = 0
    """Training images held out of training, drawn per run from its seed, to measure a
    held-out loss on; 0: none (the whole training split trains)."""
    heldout_fraction: float = 0.0
    """> 0: ``heldout_size`` follows the data set, this share of its training split
    (rounded), whatever ``heldout_size`` says: one rule for runs of any data set."""
    label_noise: float = 0.0
    """The share of the training split's labels (held-out ones too) replaced by a class
    drawn uniformly at random, which labels and classes drawn per run from its seed; the
    test set stays clean. A task knob: noisy labels want another schedule."""
    label_noise_max: float = 0.0
    """> 0: the share of noisy labels is drawn per run from its seed, uniformly between
    ``label_noise`` and this, so that runs of one task differ in a way the run shows (its
    loss) and in the schedule they want; 0: every run has ``label_noise``."""
    depth: int = 40
    """Wide ResNet depth, 6n+4."""
    widen_factor: int = 4
    """Wide ResNet width multiplier k."""
    dropout: float = 0.0
    """Dropout probability inside each residual block."""
    batch_size: int = 128
    """Images per SGD iteration; an epoch is ``train_size // batch_size`` whole batches."""
    epochs: int = 50
    """Length of the run in epochs."""
    momentum: float = 0.9
    """SGD momentum."""
    nesterov: bool = True
    """Nesterov momentum."""
    weight_decay: float = 5e-4
    """L2 weight decay of SGD."""
    optimizer: str = "sgd"
    """"sgd" (the paper's), or a tuning-free optimizer from its own package (the
    ``baselines`` extra): "schedulefree_sgd", "dadapt_sgd", "prodigy", "dog", "ldog";
    ``qan_env.training.optimizers`` says how each is set up and what its lr means."""
    device: str = "auto"
    """"cpu", "cuda", "cuda:N", or "auto": CUDA when available, else the CPU."""
    precision: str = "fp32"
    """"fp32", or "bf16": bfloat16 autocast for the network (for GPUs)."""
    channels_last: bool = False
    """NHWC memory layout for the convolutions (for GPUs)."""
    compile_model: bool = False
    """``torch.compile`` the network (slow first steps)."""

    def __post_init__(self) -> None:
        if self.dataset not in SOURCES:
            refuse(
                "dataset",
                self.dataset,
                f"one of {tuple(SOURCES)}, or a name given to qan_env.register_dataset "
                f"in this process first",
            )
        if not isinstance(self.data_dir, str):
            refuse("data_dir", self.data_dir, "a folder, as a string")
        check_choice(self, "precision", PRECISIONS)
        check_choice(self, "optimizer", OPTIMIZERS)
        for flag in ("download", "nesterov", "channels_last", "compile_model"):
            check_flag(self, flag)
        for field in ("synthetic_train_size", "synthetic_test_size"):
            check_int(self, field, 1, MAX_SYNTHETIC_SIZE)
        check_int(self, "widen_factor", 1, MAX_WIDEN_FACTOR)
        check_int(self, "batch_size", 1, MAX_BATCH_SIZE)
        check_int(self, "epochs", 1, MAX_EPOCHS)
        check_int(self, "synthetic_seed", 0)
        check_float(self, "heldout_fraction", 0.0, 0.5)
        if self.heldout_fraction > 0:
            share = round(self.heldout_fraction * self.dataset_train_size)
            object.__setattr__(self, "heldout_size", share)
        check_int(self, "heldout_size", 0)
        check_float(self, "label_noise", 0.0, 1.0)
        if self.label_noise == 1.0:
            refuse("label_noise", self.label_noise, "a share in [0, 1): some labels stay true")
        check_float(self, "label_noise_max", 0.0, 1.0)
        if self.label_noise_max and not self.label_noise < self.label_noise_max < 1.0:
            refuse(
                "label_noise_max",
                self.label_noise_max,
                f"0 (no draw) or a share in (label_noise={self.label_noise}, 1)",
            )
        if self.heldout_size >= self.dataset_train_size:
            refuse(
                "heldout_size",
                self.heldout_size,
                f"fewer than the training split's {self.dataset_train_size} images",
            )
        if self.batch_size > self.train_size:
            source = "synthetic_train_size" if self.dataset == "synthetic" else "the training set"
            if self.heldout_size:
                source += " less heldout_size"
            refuse("batch_size", self.batch_size, f"at most {source} ({self.train_size})")
        if isinstance(self.depth, bool) or not isinstance(self.depth, int):
            refuse("depth", self.depth, "an integer 6n+4 with n >= 1 (10, 16, 22, 28, 34, 40, ...)")
        check_depth(self.depth)
        check_int(self, "depth", 10, MAX_DEPTH)
        if (parameters := parameter_count(self.depth, self.widen_factor)) > MAX_PARAMETERS:
            refuse(
                "depth",
                self.depth,
                f"with widen_factor={self.widen_factor}, a network of at most "
                f"{MAX_PARAMETERS:,} parameters (this one: {parameters:,})",
            )
        check_float(self, "dropout", 0.0, 1.0)
        if self.dropout == 1.0:
            refuse("dropout", self.dropout, "a probability in [0, 1)")
        check_float(self, "momentum", 0.0, 1.0)
        if self.nesterov and self.momentum == 0.0:
            refuse("momentum", self.momentum, "> 0 with nesterov=True (or nesterov=False)")
        check_float(self, "weight_decay", 0.0, 1.0)
        if not isinstance(self.device, str) or not _is_device_name(self.device):
            refuse("device", self.device, "'auto', 'cpu', 'cuda' or 'cuda:N'")

    @property
    def dataset_train_size(self) -> int:
        """Images of the data set's training split, known before it is read: the synthetic
        set's size, or the named data set's."""
        return SOURCES[self.dataset].train_size or self.synthetic_train_size

    @property
    def data_fields(self) -> DataFields:
        """The fields that say which images this run reads (what ``load_dataset`` takes)."""
        return DataFields(
            self.dataset,
            self.data_dir,
            self.download,
            self.synthetic_train_size,
            self.synthetic_test_size,
            self.synthetic_seed,
        )

    @property
    def train_size(self) -> int:
        """Images that train: the training split less the held-out ones."""
        return self.dataset_train_size - self.heldout_size

    @property
    def iterations_per_epoch(self) -> int:
        return self.train_size // self.batch_size

    @property
    def total_iterations(self) -> int:
        """SGD iterations of the whole run: whole batches per epoch times epochs."""
        return self.epochs * self.iterations_per_epoch


def resolve_device(name: str) -> torch.device:
    """The torch device of a config's ``device``; "auto" is CUDA when present. A config may
    name a GPU that this machine lacks (it may be read elsewhere); an env refuses it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        refuse("device", name, "'cpu' or 'auto' here: CUDA is not available")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        refuse("device", name, f"a GPU index below {torch.cuda.device_count()}")
    return device


def computed_on(device: torch.device) -> str:
    """What a run's numbers were computed with, as far as it decides their rounding: torch's
    version, the device and its kernels (a CPU's vector instructions as ATen picks them, or
    the GPU's name), and the CPU thread count. Two runs bit for bit the same need the same;
    one machine's AVX-512 and another's AVX2 round differently (docs/performance.md)."""
    if device.type == "cuda":
        where = f"CUDA {torch.version.cuda} on {torch.cuda.get_device_name(device)}"
    else:
        where = f"{device.type.upper()} {torch.backends.cpu.get_cpu_capability()}"
    threads = torch.get_num_threads()
    return f"torch {torch.__version__}, {where}, {threads} thread{'s' * (threads != 1)}"


def worker_device(name: str, worker_index: int) -> str:
    """The device of worker ``worker_index`` of many: with "auto" and CUDA, GPU
    ``worker_index % n_gpus``, so that workers spread over a machine's GPUs; any other
    name (a chosen device, or "auto" without CUDA) as it is."""
    if isinstance(worker_index, bool) or not isinstance(worker_index, int) or worker_index < 0:
        refuse("worker_index", worker_index, "a whole number >= 0 (the worker's index)")
    if name != "auto" or not torch.cuda.is_available():
        return name
    return f"cuda:{worker_index % torch.cuda.device_count()}"


def _is_device_name(name: str) -> bool:
    if name == "auto":
        return True
    try:
        return torch.device(name).type in ("cpu", "cuda")
    except RuntimeError:
        return False

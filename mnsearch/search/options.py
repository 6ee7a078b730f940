"""Checks of what a sweep (and the commands around it) will use, made before any work starts.

A bad value found in a worker costs a traceback, a trial left RUNNING and a sweep that exits 0;
found here it costs one `OptionsError` line naming the option and what is allowed. The checks
are the library's (`SweepOptions` runs `check_sweep_options` when it is built, `run_sweep` runs
`check_jobs` and `check_writable_folder`); the CLI calls the same functions for train, export
and report outputs.

Writability is tested by creating and deleting a file, not with `os.access`: root passes every
`os.access` test, and a read-only mount or a full quota is only found by trying.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from mnsearch.data.datasets import Dataset, DatasetError, stratified_holdout, stratified_subset
from mnsearch.errors import MnsearchError
from mnsearch.search.space import SAMPLERS

if TYPE_CHECKING:
    from mnsearch.search.study import SweepOptions
    from mnsearch.train.config import TrainConfig

# The study name names folders (runs/STUDY, ARTIFACTS/STUDY) and the temporary names made
# beside them (".STUDY.xxxxxxxx"): 100 bytes leaves room under the usual 255-byte limit.
MAX_STUDY_NAME_BYTES = 100
_NAME_PUNCTUATION = "._-"
MAX_SEED = 2**32 - 1  # numpy's RandomState (the samplers' seed) takes 0 .. 2**32 - 1

# Peak resident memory of one sweep worker: the JAX runtime, the dataset, compiled programs,
# a training step's buffers. Measured with psutil (every process's RSS sampled each 0.2 s,
# tcmalloc as the CLI runs it) on the 2-core test machine, one worker, batch 128 at 28 px on a
# Fashion-MNIST-sized dataset (60,000 + 10,000 images, 4,000-image subset, as the spaces in
# search_spaces/ train): V1 α=1 peaked at 1.48 GiB, V2 α=1 at 1.73 GiB; the 12 px toy grid of
# the tests at 0.66 GiB. The parent (Optuna, pandas, the live table) peaked at 0.41 GiB.
# Rounded up to 2 GiB. Wider models, bigger batches or resolutions need more: for those
# the cap is optimistic, never too strict.
WORKER_MEMORY_BYTES = 2 * 2**30
PARENT_MEMORY_BYTES = 2**29


class OptionsError(MnsearchError):
    """An option value the run would fail on later (in a worker, after hours): refused now."""


def check_sweep_options(options: SweepOptions) -> None:
    """Every `SweepOptions` field in range; messages use the `mnsearch sweep` flag names."""
    check_study_name(options.study_name)
    for flag, value in (("--trials", options.trials), ("--epochs", options.epochs),
                        ("--jobs", options.jobs), ("--min-dominating", options.min_dominating)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise OptionsError(f"{flag} must be a whole number >= 1, got {value!r}")
    if options.timeout is not None and not (math.isfinite(options.timeout)
                                            and options.timeout > 0):
        raise OptionsError(f"--timeout must be a number of seconds > 0, got {options.timeout}")
    if options.subset is not None:
        check_subset(options.subset)
    if options.sampler is not None and options.sampler not in SAMPLERS:
        raise OptionsError(f"--sampler '{options.sampler}' is not one of {', '.join(SAMPLERS)}")
    if isinstance(options.seed, bool) or not isinstance(options.seed, int) \
            or not 0 <= options.seed <= MAX_SEED:
        raise OptionsError(f"--seed must be a whole number from 0 to {MAX_SEED}, "
                           f"got {options.seed!r}")
    if not options.artifacts:
        raise OptionsError("--artifacts must name a folder, got an empty string")


def check_subset(subset: float) -> None:
    """A training subset is a count of images (a whole number >= 1) or a fraction in (0, 1].

    Whether a count fits the dataset is checked once the dataset is loaded (the count must
    cover every class and not exceed the training split).
    """
    allowed = "a count of images (a whole number >= 1) or a fraction in (0, 1]"
    if isinstance(subset, bool) or not isinstance(subset, int | float) \
            or not math.isfinite(subset) or subset <= 0:
        raise OptionsError(f"--subset must be {allowed}, got {subset!r}")
    if subset > 1 and subset != int(subset):
        raise OptionsError(f"--subset must be {allowed}, got {subset!r}")


def check_subset_fits(config: TrainConfig, dataset: Dataset, where: str) -> None:
    """The recipe's subset can be drawn from the dataset's training split (it must cover every
    class and not exceed the split): checked once in the parent, not in each trial."""
    if config.subset is None:
        return
    labels = dataset.train_labels  # labels stand in for images: nothing big is copied
    train, _ = stratified_holdout(labels, labels, config.validation_fraction, config.data_seed)
    try:
        stratified_subset(train.labels, train.labels, config.subset, config.data_seed)
    except DatasetError as error:
        raise OptionsError(f"{where}: {error}") from None


def check_study_name(name: str, flag: str = "--study") -> None:
    """A study name is one safe file name: it becomes the folders runs/NAME and ARTIFACTS/NAME.

    `../../x` would write outside them, `a/b` would nest, a leading '-' reads as a flag in the
    commands the results print, and a name over 100 bytes stops fitting beside its staging
    files under the file system's 255-byte limit.
    """
    allowed = (f"letters, digits, '.', '_' and '-', not starting with '.' or '-', "
               f"at most {MAX_STUDY_NAME_BYTES} bytes")
    size = len(name.encode("utf-8", "surrogateescape"))
    if size > MAX_STUDY_NAME_BYTES:
        raise OptionsError(f"{flag}: the study name is {size} bytes long, more than the "
                           f"{MAX_STUDY_NAME_BYTES} allowed (it names the folders runs/STUDY "
                           f"and ARTIFACTS/STUDY): use a shorter name ({allowed})")
    unsafe = not name or name[0] in ".-" or not all(
        character.isalnum() or character in _NAME_PUNCTUATION for character in name)
    if unsafe:
        raise OptionsError(f"{flag} {name!r} is not a single safe file name (it names the "
                           f"folders runs/STUDY and ARTIFACTS/STUDY): use {allowed}")


def check_writable_folder(path: str | Path, option: str) -> Path:
    """`path` is a folder this process can write in, or one it can create; returns it.

    A file is created and deleted in the folder, or in its nearest existing ancestor when the
    folder does not exist yet (nothing is left behind, and no folder is created).
    """
    folder = Path(path)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        where = "is a file" if existing == folder else f"is inside '{existing}', a file"
        raise OptionsError(f"{option} '{path}' {where}: give a folder")
    reason = _cannot_write(existing)
    if reason:
        raise OptionsError(f"{option} '{path}': cannot write in '{existing}' ({reason}): "
                           "give a folder you can write in")
    return folder


def _cannot_write(folder: Path) -> str | None:
    """Why no file can be created in `folder` (None: one was created and deleted)."""
    try:
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".mnsearch-write-test-")
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        return error.strerror or type(error).__name__
    return None


def check_output_file(path: str | Path, option: str, force: bool = False) -> Path:
    """`path` can be written as a file: not a folder, not existing unless `force`, writable."""
    target = Path(path)
    if target.is_dir():
        raise OptionsError(f"{option} '{path}' is a folder: give a file name")
    if target.exists() and not force:
        raise OptionsError(f"{option} '{path}' exists: pass --force to overwrite it, or "
                           "choose another file")
    check_writable_folder(target.parent, option)
    return target


def available_cpus() -> int:
    """CPU cores this process may run on (its affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return os.cpu_count() or 1


def available_memory() -> int | None:
    """Bytes of memory available to new processes now, or None where it cannot be read.

    The smaller of the system's available memory and what the cgroup (a container's limit)
    still allows: a container sees the host's /proc/meminfo.
    """
    amounts = [amount for amount in (_meminfo_available(), _cgroup_available())
               if amount is not None]
    return min(amounts) if amounts else None


def _meminfo_available() -> int | None:
    try:
        import psutil
        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_available() -> int | None:
    """cgroup v2's memory.max minus memory.current, when a limit is set."""
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(int(limit) - int((root / "memory.current").read_text()), 0)
    except (OSError, ValueError):
        return None


SIMULATED_WORKERS_PER_CORE = 4


def max_jobs(simulate: bool = False) -> tuple[int, str]:
    """The most local workers this machine holds, and what limits it (cores or memory).

    A simulated worker (`--simulate`) trains nothing and mostly waits on its storage, so
    load tests may run `SIMULATED_WORKERS_PER_CORE` of them a core; memory still binds (each
    holds its copy of the study).
    """
    cpus = available_cpus()
    per_core = SIMULATED_WORKERS_PER_CORE if simulate else 1
    by_cores = cpus * per_core, (f"this machine has {cpus} CPU core(s)"
                                 + (f" and --simulate allows {per_core} workers a core"
                                    if simulate else ""))
    memory = available_memory()
    if memory is None:
        return by_cores
    by_memory = max((memory - PARENT_MEMORY_BYTES) // WORKER_MEMORY_BYTES, 1)
    if by_memory < by_cores[0]:
        return int(by_memory), (f"{memory / 2**30:.1f} GiB of memory is available and a worker "
                                f"needs about {WORKER_MEMORY_BYTES / 2**30:.1f} GiB")
    return by_cores


def check_jobs(jobs: int, simulate: bool = False) -> None:
    """Refuse more local workers than cores or memory hold (each worker trains on threads of
    its own: more workers than cores only slows every trial, and too many exhaust memory)."""
    limit, reason = max_jobs(simulate)
    if jobs > limit:
        raise OptionsError(f"--jobs {jobs} is more than this machine holds: {reason}, so at "
                           f"most --jobs {limit}")

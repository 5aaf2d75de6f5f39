"""``compute_stats`` (norm_transforms/stats/sources.py, files.py, workers.py): folders and
files (16-bit, grayscale, RGBA, unreadable, mixed, links), arrays, iterables, torch ``Dataset``
and ``DataLoader`` sources, the worker processes (which must not hang after OpenCV's thread
pool ran), and the ``stats`` command that prints what it computed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import types
import warnings

import cv2
import numpy as np
import pytest
from test_stats import assert_matches_reference, random_images, stats_of, with_zeros

from norm_transforms import ChannelStats, compute_stats
from norm_transforms.cli import main

try:  # for a Dataset class at module level, which DataLoader workers can unpickle
    from torch.utils.data import Dataset as TorchDataset
except ImportError:  # the torch tests skip
    TorchDataset = object

# --------------------------------------------------------------------------- files


def write_image(path, rgb: np.ndarray) -> None:
    """Write an RGB(A) or gray image the way other tools would (OpenCV stores BGR(A))."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conversions = {3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGRA}
    bgr = cv2.cvtColor(rgb, conversions[rgb.shape[2]]) if rgb.ndim == 3 else rgb
    assert cv2.imwrite(str(path), bgr)


def read_rgb(path) -> np.ndarray:
    """The reference decode: cv2.imread + cvtColor, as a user would."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    conversions = {3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGBA}
    return cv2.cvtColor(image, conversions[image.shape[2]]) if image.ndim == 3 else image


def smooth_rgb(rng, dtype=np.uint8, size=(24, 32), channels=3) -> np.ndarray:
    top = np.iinfo(dtype).max
    coarse = rng.random((4, 4, channels)) * top
    image = cv2.resize(coarse, size[::-1], interpolation=cv2.INTER_LINEAR)
    return np.clip(image + rng.normal(0, top / 50, image.shape), 0, top).astype(dtype)


@pytest.fixture(scope="session")
def folder(tmp_path_factory) -> tuple:
    """A nested folder of png, jpg, JPEG, bmp, webp and tif files (RGB, different sizes) and a
    file that is no image; returns the folder and the files in sorted order."""
    rng = np.random.default_rng(7)
    root = tmp_path_factory.mktemp("images")
    names = ["a.png", "b.jpg", "sub/c.JPEG", "sub/deeper/d.bmp", "sub/e.webp", "f.tif", "sub/g.PNG"]
    for index, name in enumerate(names):
        write_image(root / name, smooth_rgb(rng, size=(16 + index, 20 + 2 * index)))
    (root / "notes.txt").write_text("not an image")
    return root, sorted(str(root / name) for name in names)


def test_folder_stats_equal_the_reference_of_every_file_decoded_as_rgb(folder):
    root, files = folder
    stats = compute_stats(root, progress=False)
    assert stats.images == len(files)
    assert_matches_reference(stats, [read_rgb(path) for path in files])


def test_worker_count_and_chunk_size_do_not_change_a_bit(folder):
    root, _ = folder
    in_process = compute_stats(root, progress=False)
    assert compute_stats(root, num_workers=2, chunksize=2, progress=False) == in_process
    assert compute_stats(root, num_workers=1, chunksize=5, progress=False) == in_process


def test_a_list_of_files_and_folders_is_read_like_the_folder(folder):
    root, files = folder
    sub = os.path.dirname(files[3])
    in_sub = [path for path in files if path.startswith(sub + os.sep)]
    assert compute_stats([*files[:3], sub], progress=False).images == 3 + len(in_sub)
    assert compute_stats(files, progress=False) == compute_stats(root, progress=False)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_files_keep_16_bit_values(rng, tmp_path, suffix):
    images = [smooth_rgb(rng, np.uint16, size=(10 + i, 12)) for i in range(3)]
    for index, image in enumerate(images):
        write_image(tmp_path / f"{index}{suffix}", image)
    stats = compute_stats(tmp_path, progress=False)
    assert stats.kind == "uint16" and stats.histogram.shape == (3, 65536)
    assert_matches_reference(stats, images)


@pytest.mark.parametrize("dtype", [np.int16, np.int32])
def test_signed_tiff_files_keep_their_signed_values(rng, tmp_path, dtype):
    # CT slices in Hounsfield units (air -1000, bone +3000), as OpenCV reads them: CV_16S / CV_32S.
    images = [rng.integers(-1024, 3072, (10 + i, 12)).astype(dtype) for i in range(3)]
    for index, image in enumerate(images):
        write_image(tmp_path / f"{index}.tif", image)
    stats = compute_stats(tmp_path, progress=False)
    assert stats.kind == np.dtype(dtype).name and stats.channels == 1
    assert_matches_reference(stats, images)
    if dtype == np.int16:
        pixels = np.concatenate([image.ravel() for image in images]).astype(np.float64)
        np.testing.assert_array_equal(
            stats.percentile([1, 50, 99]), np.percentile(pixels, [1, 50, 99])[:, None]
        )


def test_stats_command_on_int16_tiffs_prints_hounsfield_units_and_max_pixel_value_1(rng, tmp_path, capsys):
    images = [rng.integers(-1024, 3072, (16, 16)).astype(np.int16) for _ in range(2)]
    for index, image in enumerate(images):
        write_image(tmp_path / f"{index}.tif", image)
    assert main(["stats", str(tmp_path), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    stats = compute_stats(tmp_path, progress=False)
    assert "2 images (int16, 1 channel)" in printed
    assert f"| gray | 512 | {stats.mean[0]:.6g} | {stats.std[0]:.6g} | {stats.min[0]:.6g} |" in printed
    # No full scale: mean and std stay in Hounsfield units, with max_pixel_value=1.0 spelled out.
    arguments = f"mean=({stats.mean[0]:.6g},), std=({stats.std[0]:.6g},), max_pixel_value=1.0"
    assert f"A.Normalize({arguments})" in printed


def test_grayscale_files_give_one_channel(rng, tmp_path):
    images = [smooth_rgb(rng)[..., 0] for _ in range(3)]
    for index, image in enumerate(images):
        write_image(tmp_path / f"{index}.png", image)
    stats = compute_stats(tmp_path, progress=False)
    assert stats.channels == 1
    assert_matches_reference(stats, images)


def test_rgba_files_give_rgba_order(rng, tmp_path):
    images = [smooth_rgb(rng, channels=4) for _ in range(2)]
    images[0][..., 3] = 255  # an alpha channel that differs from every colour
    for index, image in enumerate(images):
        write_image(tmp_path / f"{index}.png", image)
    assert_matches_reference(compute_stats(tmp_path, progress=False), images)


def test_unreadable_file_is_an_error_naming_it(folder, tmp_path):
    _, files = folder
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    with pytest.raises(OSError, match=r"cannot read 1 file: .*broken\.png \(OpenCV cannot read it\)"):
        compute_stats([*files, str(broken)], progress=False)
    with pytest.raises(OSError, match=r"broken\.png"):
        compute_stats([*files, str(broken)], num_workers=2, chunksize=3, progress=False)


def test_skip_unreadable_warns_naming_the_file_and_counts_the_rest(folder, tmp_path):
    _, files = folder
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 truncated")
    with pytest.warns(UserWarning, match=r"skipped 1 file: .*broken\.jpg"):
        stats = compute_stats([str(broken), *files], skip_unreadable=True, progress=False)
    assert stats == compute_stats(files, progress=False)


def test_mixed_channel_counts_are_an_error_naming_a_file_of_each(rng, tmp_path):
    write_image(tmp_path / "color.png", smooth_rgb(rng))
    write_image(tmp_path / "gray.png", smooth_rgb(rng)[..., 0])
    with pytest.raises(ValueError, match=r"3 channels, e\.g\. .*color\.png; .*1 channel, e\.g\. .*gray\.png"):
        compute_stats(tmp_path, progress=False)


@pytest.mark.skipif(not hasattr(os, "symlink") or sys.platform == "win32", reason="needs symbolic links")
def test_links_to_folders_are_followed_and_each_folder_read_once(rng, tmp_path):
    image = smooth_rgb(rng)
    write_image(tmp_path / "real" / "a.png", image)
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    (tmp_path / "real" / "cycle").symlink_to(tmp_path, target_is_directory=True)
    assert compute_stats(tmp_path, progress=False) == stats_of([image])
    assert compute_stats(tmp_path / "link", progress=False) == stats_of([image])


def test_missing_path_and_empty_folder_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        compute_stats(tmp_path / "missing", progress=False)
    with pytest.raises(ValueError, match="no image files"):
        compute_stats(tmp_path, progress=False)


@pytest.mark.parametrize("workers", [-1, 1.5, True])
def test_bad_num_workers_is_refused(folder, workers):
    with pytest.raises(ValueError, match="num_workers"):
        compute_stats(folder[0], num_workers=workers)


def test_progress_bar_counts_the_files(folder, capsys):
    root, files = folder
    compute_stats(root, progress=True)
    assert f"{len(files)}/{len(files)}" in capsys.readouterr().err


# --------------------------------------------------------------------------- other sources


def test_iterable_of_arrays_and_of_pairs(rng):
    images = random_images(rng, np.uint8, 3)
    expected = stats_of(images)
    assert compute_stats(iter(images), progress=False) == expected
    assert compute_stats([(image, 0) for image in images], progress=False) == expected
    assert compute_stats(({"image": image} for image in images), progress=False) == expected


def test_one_array_or_tensor_is_an_image_or_a_batch(rng):
    batch = rng.integers(0, 256, (5, 4, 6, 3), dtype=np.uint8)
    assert compute_stats(batch, progress=False) == stats_of(list(batch))
    assert compute_stats(batch[0], progress=False) == stats_of([batch[0]])


def test_iterable_with_a_bad_item_names_its_index(rng):
    images = [*random_images(rng, np.uint8, 3, count=2), "not an image"]
    with pytest.raises(OSError, match="not an image"):
        compute_stats(iter(images), progress=False)
    with pytest.raises(ValueError, match=r"item 1: .*3 channels before.*1 channel"):
        compute_stats(iter([images[0], images[0][..., 0]]), progress=False)
    with pytest.raises(TypeError, match="item 0: expected an image"):
        compute_stats([3.0], progress=False)


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


class Pairs(TorchDataset):
    """CHW tensors of HWC arrays, with a label or alone. At module level: compute_stats' DataLoader
    workers (forkserver) receive the Dataset pickled, and import its class by name."""

    def __init__(self, images: list[np.ndarray], labelled: bool = True):
        self.images, self.labelled = images, labelled

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        import torch

        tensor = torch.from_numpy(self.images[index]).permute(2, 0, 1)
        return (tensor, index % 2) if self.labelled else tensor


def test_dataset_and_dataloader_of_image_label_pairs(rng, torch):
    images = list(rng.integers(0, 256, (10, 6, 7, 3), dtype=np.uint8))
    expected = stats_of(images)
    dataset = Pairs(images)
    assert compute_stats(dataset, progress=False) == expected
    assert compute_stats(torch.utils.data.DataLoader(dataset, batch_size=4), progress=False) == expected
    assert compute_stats(Pairs(images, labelled=False), num_workers=2, progress=False) == expected


def test_dataset_that_workers_cannot_unpickle_is_a_clear_error(torch, monkeypatch):
    class Local(torch.utils.data.Dataset):  # inside a function: pickle cannot find it by name
        def __len__(self):
            return 1

        def __getitem__(self, index):
            return np.zeros((2, 2, 3), np.uint8)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's own warning about the pickling error
        with pytest.raises(TypeError, match=r"num_workers=2 .* Local cannot be pickled .*num_workers=0"):
            compute_stats(Local(), num_workers=2, progress=False)
    assert compute_stats(Local(), progress=False).count == 4  # in this process: no pickling
    # Defined in a notebook or `python -c`: it pickles, but the workers could not import it.
    monkeypatch.setattr(Local, "__module__", "__main__")
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    with pytest.raises(TypeError, match=r"Local is defined in an interactive session .*\.py file"):
        compute_stats(Local(), num_workers=2, progress=False)


def test_dataset_of_pil_images(rng):
    pil = pytest.importorskip("PIL.Image")
    images = random_images(rng, np.uint8, 3)
    assert compute_stats([pil.fromarray(image) for image in images], progress=False) == stats_of(images)


# --------------------------------------------------------------------------- worker processes


def test_workers_never_start_with_fork():
    from norm_transforms.stats.workers import worker_context

    assert worker_context().get_start_method() in ("forkserver", "spawn")


# The scenario that hung the test suite: OpenCV's thread pool (and torch's) ran in this process,
# then compute_stats forked its workers, which blocked for ever in cv2.setNumThreads(1) on a
# mutex held by a pool thread that the child does not have; a Dataset that pins OpenCV's
# threads in its DataLoader workers blocked the same way.
HANG_SCENARIO = """
import json, sys
import cv2, numpy as np, torch
import norm_transforms.stats.workers
from norm_transforms import compute_stats
from decoding import Decoding

if sys.argv[2] == "fork":  # the old start method, to see this test fail
    import multiprocessing
    norm_transforms.stats.workers.worker_context = lambda: multiprocessing.get_context("fork")
cv2.resize(np.zeros((2000, 2000, 3), np.uint8), (1000, 1000))  # OpenCV's thread pool ran
torch.ones(512, 512) @ torch.ones(512, 512)  # and torch's
folder = sys.argv[1]
results = [
    compute_stats(folder, progress=False),
    compute_stats(folder, num_workers=2, chunksize=1, progress=False),
    compute_stats(Decoding(folder), num_workers=2, progress=False),
]
print(json.dumps([stats.to_dict() for stats in results]))
"""

DECODING_DATASET = """
import os
import cv2
from torch.utils.data import Dataset


class Decoding(Dataset):
    # Decodes in the DataLoader worker and pins OpenCV to one thread there, as training code does.
    def __init__(self, folder):
        self.paths = sorted(os.path.join(folder, name) for name in os.listdir(folder))

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        cv2.setNumThreads(1)
        return cv2.cvtColor(cv2.imread(self.paths[index]), cv2.COLOR_BGR2RGB)
"""


def run_to_deadline(args: list[str], seconds: float, **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run, except that on timeout the whole process group dies: the workers of a
    hung pool too, which would otherwise outlive the test, blocked for ever."""
    posix = sys.platform != "win32"
    with subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=posix, **kwargs
    ) as process:
        try:
            out, err = process.communicate(timeout=seconds)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL) if posix else process.kill()
            process.communicate()
            pytest.fail(f"{args[:2]} did not finish within {seconds} s: hung")
    return subprocess.CompletedProcess(args, process.returncode, out, err)


def test_workers_do_not_hang_after_opencv_and_torch_ran_threads(rng, tmp_path, torch):
    folder = tmp_path / "images"
    images = [smooth_rgb(rng, size=(20 + index, 24)) for index in range(5)]
    for index, image in enumerate(images):
        write_image(folder / f"{index}.png", image)
    (tmp_path / "decoding.py").write_text(DECODING_DATASET)
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    # About 5 s here (torch imported in the script and in 2 DataLoader workers); hung, never.
    completed = run_to_deadline(
        [sys.executable, "-c", HANG_SCENARIO, str(folder), "default"], 60, env=env, cwd=tmp_path
    )
    assert completed.returncode == 0, completed.stderr
    in_process, in_workers, in_dataloader = (
        ChannelStats.from_dict(state) for state in json.loads(completed.stdout)
    )
    assert in_process == in_workers == in_dataloader == stats_of(images)


# --------------------------------------------------------------------------- the command


def test_stats_command_prints_the_table_and_paste_ready_lines(folder, tmp_path, capsys):
    root, files = folder
    out = tmp_path / "stats.json"
    assert main(["stats", str(root), "--json", str(out), "--no-progress", "--workers", "2"]) == 0
    printed = capsys.readouterr().out
    stats = compute_stats(root, progress=False)
    assert ChannelStats.load(out) == stats
    assert f"{len(files)} images (uint8, 3 channels), {stats.count} pixels per channel" in printed
    red_row = f"| R | {stats.count} | {stats.mean[0]:.6g} | {stats.std[0]:.6g} | "
    assert red_row in printed and f"| {stats.median[0]:.6g} |" in printed
    kwargs = stats.to_normalize_kwargs()
    arguments = "mean=({}), std=({}), max_pixel_value=255.0".format(
        *(", ".join(f"{v:.6g}" for v in kwargs[key]) for key in ("mean", "std"))
    )
    for name in ("A.Normalize", "TorchNormalize", "NormalizeLayer"):
        assert f"{name}({arguments})" in printed


def test_stats_command_max_pixel_value(folder, capsys):
    root, _ = folder
    main(["stats", str(root), "--no-progress", "--max-pixel-value", "1"])
    mean = compute_stats(root, progress=False).mean
    assert f"A.Normalize(mean=({', '.join(f'{v:.6g}' for v in mean)})" in capsys.readouterr().out


def test_stats_command_reports_unreadable_files_and_skips_them_on_request(folder, tmp_path, capsys):
    root, files = folder
    broken = tmp_path / "broken.webp"
    broken.write_bytes(b"RIFF")
    with pytest.raises(SystemExit) as exit_info:
        main(["stats", str(root), str(broken), "--no-progress"])
    assert exit_info.value.code == 1
    assert "broken.webp" in capsys.readouterr().err
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["stats", str(root), str(broken), "--no-progress", "--skip-unreadable"]) == 0
    assert any("broken.webp" in str(warning.message) for warning in caught)
    assert f"{len(files)} images" in capsys.readouterr().out


# --------------------------------------------------------------------------- nonzero=True


@pytest.fixture(scope="module")
def scans(tmp_path_factory) -> tuple:
    """16-bit PNG "scans" with a zero background and zero values scattered per channel."""
    rng = np.random.default_rng(11)
    root = tmp_path_factory.mktemp("scans")
    paths = []
    for index in range(4):
        image = with_zeros(rng, smooth_rgb(rng, np.uint16, size=(20 + index, 24)), share=0.2)
        image[:6] = 0
        write_image(root / f"scan{index}.png", image)
        paths.append(str(root / f"scan{index}.png"))
    return root, paths


def test_nonzero_folder_stats_equal_the_reference_in_and_out_of_workers(scans):
    root, paths = scans
    in_process = compute_stats(root, progress=False, nonzero=True)
    assert in_process.nonzero and in_process.kind == "uint16"
    assert_matches_reference(in_process, [read_rgb(path) for path in paths], nonzero=True)
    in_workers = compute_stats(root, progress=False, nonzero=True, num_workers=2, chunksize=1)
    assert in_workers == in_process


def test_nonzero_stats_of_arrays_and_iterables(rng):
    images = [with_zeros(rng, image) for image in random_images(rng, np.float32, 3)]
    from_list = compute_stats(images, progress=False, nonzero=True)
    assert from_list == stats_of(images, nonzero=True)
    assert compute_stats(images[0], progress=False, nonzero=True) == stats_of(images[:1], nonzero=True)
    with pytest.raises(TypeError, match="nonzero must be True or False"):
        compute_stats(images, progress=False, nonzero="yes")


def test_stats_command_nonzero_counts_and_saves_the_non_zero_values(scans, tmp_path, capsys):
    root, _ = scans
    out = tmp_path / "stats.json"
    assert main(["stats", str(root), "--nonzero", "--json", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    stats = compute_stats(root, progress=False, nonzero=True)
    assert ChannelStats.load(out) == stats
    assert f"{stats.count} pixels per channel (count: the non-zero ones, --nonzero)" in printed
    assert f"| R | {stats.counts[0]} | {stats.mean[0]:.6g} | {stats.std[0]:.6g} | " in printed
    assert stats.counts[0] < stats.count

"""Files the project writes (whole or not at all, never through a planted link) and
reads (checked before use)."""

from __future__ import annotations

import io
import json
import pathlib
import pickle
import zipfile

import numpy as np
import pytest
import torch

from qan_env.files import check_writable, replace_atomically, write_atomically
from qan_env.run_folder import lock_run_folder, read_run_config
from qan_env.sb3.checkpoint import read_arrays
from qan_env.sb3.normalization import read_normalization
from qan_env.sb3.policy import MAX_POLICY_BYTES, policy_weights
from qan_env.tensors import check_like, load_tensors


def test_a_link_planted_at_the_name_is_replaced_not_written_through(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me")
    link = tmp_path / "config.json"
    link.symlink_to(target)
    for name in ("config.partial.json", ".config.partial.json"):  # predictable side names
        (tmp_path / name).symlink_to(target)
    write_atomically(link, "new")
    assert target.read_text() == "keep me"
    assert not link.is_symlink() and link.read_text() == "new"
    assert link.stat().st_mode & 0o777 == 0o644


def test_a_write_that_fails_leaves_the_old_file_and_no_side_file(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("old")

    def fail(side):
        side.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        replace_atomically(path, fail)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


@pytest.mark.parametrize(
    "values, message",
    [
        ({"mean": [0.0, float("nan")], "var": [1.0, 1.0], "clip": 10, "epsilon": 1e-8}, "finite"),
        ({"mean": [0.0], "var": [1.0], "clip": 10, "epsilon": -1.0}, "epsilon=-1.0"),
        ({"mean": [0.0], "var": [-1.0], "clip": 10, "epsilon": 1e-8}, "var >= 0"),
        ({"mean": [0.0], "var": [1.0], "clip": 10}, "KeyError"),
        ({"mean": [0.0, 1.0], "var": [1.0], "clip": 10, "epsilon": 1e-8}, "same length"),
    ],
)
def test_normalisation_statistics_that_no_run_writes_are_refused(tmp_path, values, message):
    (tmp_path / "normalization.json").write_text(json.dumps(values))
    with pytest.raises(ValueError, match=message):
        read_normalization(tmp_path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "Expecting property name"),
        ('{"env": {}, "agent": {}}', "'version'"),
        ('{"env": [], "agent": {}, "version": "1"}', "not objects"),
        ('{"env": {"epochs": "many"}, "agent": {}, "version": "1"}', "epochs="),
    ],
)
def test_a_malformed_config_json_is_refused_naming_the_file(tmp_path, text, message):
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ValueError, match=message) as error:
        read_run_config(tmp_path)
    assert str(error.value).startswith(f"{tmp_path / 'config.json'} is not a run's config.json")


def test_a_run_folder_is_held_by_one_process_at_a_time(tmp_path):
    held = lock_run_folder(tmp_path / "run")
    with pytest.raises(RuntimeError, match="in use by another process"):
        lock_run_folder(tmp_path / "run")
    held.close()
    lock_run_folder(tmp_path / "run").close()  # free again


def model_zip(path, entry: bytes) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("policy.pth", entry)


def saved(weights) -> bytes:
    buffer = io.BytesIO()
    torch.save(weights, buffer)
    return buffer.getvalue()


def test_a_model_zip_cannot_make_the_loader_allocate_more_than_its_weights(tmp_path):
    # a one-element storage seen as 10^9 elements: small on disk, and it passes weights_only
    huge = torch.zeros(1).expand(10**5, 10**4)
    model_zip(tmp_path / "stride0.zip", saved({"q_net.q_net.0.weight": huge}))
    with pytest.raises(ValueError, match="not dense over its own storage"):
        policy_weights(tmp_path / "stride0.zip")
    model_zip(tmp_path / "bomb.zip", bytes(MAX_POLICY_BYTES + 1))  # zeros: some kilobytes
    assert (tmp_path / "bomb.zip").stat().st_size < 2**20
    with pytest.raises(ValueError, match="more than a policy's weights take"):
        policy_weights(tmp_path / "bomb.zip")
    weight = torch.arange(12.0).reshape(4, 3)
    model_zip(tmp_path / "good.zip", saved({"q_net.q_net.0.weight": weight}))
    assert torch.equal(policy_weights(tmp_path / "good.zip")["q_net.q_net.0.weight"], weight)


class WritesAFile:
    """Unpickling this writes ``marker``: what a crafted file could do."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_tensor_files_are_read_as_data_checked_against_the_shapes_expected(tmp_path):
    marker = tmp_path / "code_ran"
    with pytest.raises(ValueError, match=r"agent\.pt is not a file of tensors"):
        load_tensors(saved({"policy": WritesAFile(marker)}), "agent.pt")
    assert not marker.exists()
    with pytest.raises(ValueError, match=r"\['exp_avg'\]\[0\] of shape \(100000, 10000\)"):
        load_tensors(saved({"exp_avg": [torch.zeros(1).expand(10**5, 10**4)]}), "agent.pt")
    fresh = {"w": torch.zeros(4, 3)}
    check_like(load_tensors(saved({"w": torch.ones(4, 3)}), "agent.pt"), fresh, "agent.pt")
    with pytest.raises(ValueError, match=r"'w' is \(3, 4\), where this run's settings make"):
        check_like({"w": torch.ones(3, 4)}, fresh, "agent.pt")
    with pytest.raises(ValueError, match=r"holds \['v'\], not the tensors \['w'\]"):
        check_like({"v": torch.ones(4, 3)}, fresh, "agent.pt")


def test_array_files_are_checked_in_size_before_they_are_read(tmp_path):
    like = {"rewards": np.zeros((8, 1), np.float32), "dones": np.zeros((8, 1), np.float32)}
    path = tmp_path / "replay_buffer.npz"
    np.savez(path, rewards=np.ones((8, 1), np.float32), dones=np.zeros((8, 1), np.float32))
    assert read_arrays(path, like)["rewards"].sum() == 8
    np.savez(path, rewards=np.ones((8, 2), np.float32), dones=np.zeros((8, 1), np.float32))
    with pytest.raises(ValueError, match=r"rewards is \(8, 2\) float32, where this run's"):
        read_arrays(path, like)
    np.savez(path, rewards=np.zeros(10**6, np.float32), dones=np.zeros((8, 1), np.float32))
    with pytest.raises(ValueError, match="rewards holds 4,000,128 bytes, not 32"):
        read_arrays(path, like)
    marker = tmp_path / "code_ran"
    np.savez(path, rewards=np.array([WritesAFile(marker)]), dones=np.zeros((8, 1), np.float32))
    with pytest.raises(ValueError, match="rewards is not an array of numbers"):
        read_arrays(path, like)
    path.write_bytes(pickle.dumps(WritesAFile(marker)))
    with pytest.raises(ValueError, match=r"replay_buffer.npz is not a file of arrays"):
        read_arrays(path, like)
    np.savez(path, rewards=np.zeros((8, 1), np.float32))
    with pytest.raises(ValueError, match=r"holds \['rewards'\], not the arrays"):
        read_arrays(path, like)
    assert not marker.exists()


def test_a_folder_that_cannot_take_results_is_named_before_any_work(tmp_path):
    assert check_writable(tmp_path / "new" / "folder").is_dir()  # made, and nothing left in it
    assert not list((tmp_path / "new" / "folder").iterdir())
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ValueError, match=r"a_file/out cannot take the results \(Not a directory"):
        check_writable(tmp_path / "a_file" / "out")

"""UNet training with Accelerate: checkpoints, exact resume, EMA, outputs the profile loads."""
import json

import pytest
import torch
from diffusers import UNet2DModel

from emosmc.profiles import load_scheduler, load_unet
from emosmc.unet_training import TrainingRun, UNetTrainingConfig, latest_checkpoint, train_unet


def tiny_unet(seed):
    torch.manual_seed(seed)
    return UNet2DModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
                       down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
                       norm_num_groups=4, attention_head_dim=8)


@pytest.fixture(scope="module")
def latents():
    return torch.randn(40, 4, 8, 8, generator=torch.Generator().manual_seed(3))


def cfg(out, steps, **kw):
    return UNetTrainingConfig(output_dir=str(out), max_steps=steps, batch_size=4, learning_rate=1e-3,
                              checkpoint_every=3, ema_decay=0.9, **kw)


def test_resumed_run_takes_exactly_the_steps_of_an_uninterrupted_one(latents, tmp_path):
    full = train_unet(cfg(tmp_path / "a", 6), latents, tiny_unet(0), load_scheduler(), progress=False)
    part = train_unet(cfg(tmp_path / "b", 3), latents, tiny_unet(0), load_scheduler(), progress=False)
    assert part.step == 3 and part.checkpoint.name == "checkpoint-3"
    # the session "dies"; a new one starts from another random init and must pick up the checkpoint
    resumed = train_unet(cfg(tmp_path / "b", 6), latents, tiny_unet(123), load_scheduler(), progress=False)
    assert resumed.resumed_from == tmp_path / "b" / "checkpoint-3"
    assert [s for s, _ in resumed.losses] == [1, 2, 3, 4, 5, 6]
    assert [l for _, l in resumed.losses[3:]] == pytest.approx([l for _, l in full.losses[3:]], rel=1e-5)
    assert full.losses[3][1] != full.losses[4][1]
    for a, b in zip(full.unet.parameters(), resumed.unet.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    for a, b in zip(full.ema.parameters(), resumed.ema.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    # training moved the weights, and the EMA lags behind them
    start = tiny_unet(0)
    moved = sum((p - q).abs().sum() for p, q in zip(full.unet.parameters(), start.parameters()))
    lag = sum((p - q).abs().sum() for p, q in zip(full.unet.parameters(), full.ema.parameters()))
    assert moved > 0 and lag > 0


def test_checkpoints_are_pruned_and_the_final_unet_loads_as_a_profile_folder(latents, tmp_path):
    run = train_unet(cfg(tmp_path, 9, checkpoints_total_limit=2), latents, tiny_unet(0), load_scheduler(), progress=False)
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-6", "checkpoint-9"]
    assert latest_checkpoint([tmp_path]) == tmp_path / "checkpoint-9"
    state = json.loads((tmp_path / "checkpoint-9" / "trainer_state.json").read_text())
    assert state["step"] == 9 and len(state["losses"]) == 9
    unet = load_unet(tmp_path / "unet")
    for a, b in zip(unet.parameters(), run.ema.parameters()):
        assert torch.equal(a, b)
    assert load_scheduler(tmp_path / "unet").config.beta_schedule == "scaled_linear"
    back = TrainingRun.load(tmp_path)
    assert back.step == 9 and back.losses == run.losses


def test_resume_from_an_earlier_sessions_read_only_output(latents, tmp_path):
    """Kaggle: the previous version's output is under /kaggle/input; the new run writes elsewhere."""
    train_unet(cfg(tmp_path / "input" / "prev", 3), latents, tiny_unet(0), load_scheduler(), progress=False)
    run = train_unet(cfg(tmp_path / "working", 6, resume_from=[str(tmp_path / "input" / "prev")]), latents,
                     tiny_unet(5), load_scheduler(), progress=False)
    assert run.resumed_from == tmp_path / "input" / "prev" / "checkpoint-3" and run.step == 6
    assert (tmp_path / "working" / "checkpoint-6").exists()
    assert sorted(p.name for p in (tmp_path / "input" / "prev").glob("checkpoint-*")) == ["checkpoint-3"]

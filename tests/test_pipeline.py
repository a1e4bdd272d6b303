"""EmotionEditPipeline: round trips, seeded samples, the settings it is given, and clear errors on bad input
(the CLI on top of it: test_cli.py)."""
import pytest
import torch

from emosmc.cli import main
from emosmc.pipeline import EmotionEditPipeline


def test_save_and_load_pretrained_give_the_same_edit(pipe, tmp_path, face_png):
    pipe.save_pretrained(tmp_path / "pipe")
    again = EmotionEditPipeline.from_pretrained(tmp_path / "pipe")
    kw = dict(num_particles=3, num_inference_steps=12, noise_strength=0.5, reward_on="x0")
    a = pipe([face_png], "happy", generator=torch.Generator().manual_seed(0), progress=False, **kw)
    b = again([face_png], "happy", generator=torch.Generator().manual_seed(0), progress=False, **kw)
    assert torch.equal(a.images, b.images) and a.targets == ["happy"]
    assert a.nfe["unet"] == 3 * 6 and a.nfe["decode"] > 3 * 5


def test_unknown_target_lists_the_valid_ones(pipe, face_png, capsys):
    with pytest.raises(ValueError, match="joyful.*angry, disgust, fear, happy, neutral, sad, surprise"):
        pipe([face_png], "joyful", num_particles=2, num_inference_steps=4)
    with pytest.raises(SystemExit, match="joyful"):
        main(["edit", str(face_png), "--target", "joyful", "--profile", "toy"])


def test_images_and_targets_must_pair_up(pipe, face_png):
    with pytest.raises(ValueError, match="2 image\\(s\\) but 3 target\\(s\\)"):
        pipe([face_png, face_png], ["happy", "sad", "fear"], num_particles=2, num_inference_steps=4)
    with pytest.raises(ValueError, match="64x64"):
        pipe(torch.zeros(1, 3, 32, 32), "happy", num_particles=2, num_inference_steps=4)


def test_missing_checkpoint_says_where_it_looked_and_how_to_get_one(tmp_path, face_png, monkeypatch):
    with pytest.raises(FileNotFoundError, match=f"(?s){tmp_path}.*save_pretrained"):
        EmotionEditPipeline.from_pretrained(tmp_path)
    monkeypatch.setenv("EMOSMC_CELEBAHQ", str(tmp_path / "run"))
    monkeypatch.setenv("EMOSMC_KAGGLE_INPUT", str(tmp_path / "no-input"))
    with pytest.raises(SystemExit, match=f"(?s)trained UNet at {tmp_path / 'run' / 'unet'}.*02_train_unet"):
        main(["edit", str(face_png), "--target", "happy", "--profile", "celebahq"])


def test_samples_from_pure_noise_are_seeded_images_not_noise(pipe):
    a = pipe.sample(2, 20, torch.Generator().manual_seed(3))
    b = pipe.sample(2, 20, torch.Generator().manual_seed(3))
    c = pipe.sample(2, 20, torch.Generator().manual_seed(4))
    assert a.shape == (2, 3, 64, 64) and torch.equal(a, b) and not torch.allclose(a, c)
    # a drawn image is smooth where pure noise is not: neighbouring pixels differ little
    assert (a[..., 1:] - a[..., :-1]).abs().mean() < 0.1
    with pytest.raises(ValueError, match="num_images"):
        pipe.sample(0)


def test_an_edit_config_flows_into_the_pipeline_as_it_is(pipe, face_png):
    """A config and the same settings as keywords give the same edit; a bare SMCConfig is the pixel scorer's."""
    from emosmc.edit_config import EditConfig
    from emosmc.smc import SMCConfig

    cfg = EditConfig(SMCConfig(num_particles=2, num_inference_steps=8, noise_strength=0.5, reward_on="x0"))
    a = pipe([face_png], "happy", cfg, generator=torch.Generator().manual_seed(0), progress=False)
    b = pipe([face_png], "happy", generator=torch.Generator().manual_seed(0), progress=False, num_particles=2,
             num_inference_steps=8, noise_strength=0.5, reward_on="x0")
    c = pipe([face_png], "happy", cfg.smc, generator=torch.Generator().manual_seed(0), progress=False)
    assert torch.equal(a.images, b.images) and torch.equal(a.images, c.images)
    assert a.target_index.tolist() == [3] and a.target_probs.shape == (1,)
    with pytest.raises(ValueError, match=r"unknown edit setting\(s\) \['particles'\]"):
        pipe([face_png], "happy", cfg, particles=4)
    with pytest.raises(ValueError, match="unknown scorer 'vision'"):
        pipe([face_png], "happy", cfg, scorer="vision")


def _faces(n=3):
    from emosmc.toy.gallery import demo_faces

    g = demo_faces(n)
    return torch.stack([g[k] for k in g])


def test_one_generator_per_edit_gives_the_same_edit_alone_or_in_any_batch(pipe):
    """The same face, target and seed edited alone and inside a batch: bit for bit the same image, for SMC and
    for gradient-guided moves, with the region on."""
    from emosmc.profiles import row_generators

    x = _faces(3)
    targets = ["happy", "surprise", "fear"]
    cfg = dict(num_particles=4, num_inference_steps=16, noise_strength=0.7, reward_on="x0",
                          scorer="latent", guidance_scale=20.0, region="expression", lowpass=4)
    batch = pipe(x, targets, generator=row_generators(0, [10, 11, 12]), progress=False, **cfg)
    alone = pipe(x[1:2], targets[1:2], generator=row_generators(0, [11]), progress=False, **cfg)
    assert torch.equal(batch.images[1], alone.images[0]) and torch.equal(batch.latents[1], alone.latents[0])
    reordered = pipe(x[[2, 1]], ["fear", "surprise"], generator=row_generators(0, [12, 11]), progress=False, **cfg)
    assert torch.equal(reordered.images[1], batch.images[1]) and torch.equal(reordered.images[0], batch.images[2])
    grad = dict(cfg, num_particles=2, guidance_scale=0.0, gradient_scale=20.0, proposal_correction=False)
    gb = pipe(x, targets, generator=row_generators(0, [10, 11, 12]), progress=False, **grad)
    ga = pipe(x[2:], targets[2:], generator=row_generators(0, [12]), progress=False, **grad)
    assert torch.equal(gb.images[2], ga.images[0])
    other = pipe(x[1:2], targets[1:2], generator=row_generators(1, [11]), progress=False, **cfg)
    assert not torch.equal(other.images[0], alone.images[0])  # another seed, another edit
    with pytest.raises(ValueError, match="2 generators for 3 edits"):
        pipe(x, targets, generator=row_generators(0, 2), **cfg)


def test_a_region_edit_keeps_the_source_outside_the_detected_region(pipe):
    """Outside the detector's mask the final latent is the source's own and, with paste_back, so are the
    pixels; inside it the edit may change; the mask comes from the image."""
    x = _faces(2)
    kw = dict(num_particles=3, num_inference_steps=16, noise_strength=0.7, reward_on="x0", scorer="latent",
              guidance_scale=20.0, progress=False)
    out = pipe(x, "happy", region="expression", paste_back=True, generator=torch.Generator().manual_seed(0), **kw)
    assert out.regions.shape == (2, 1, 64, 64) and torch.equal(out.regions, pipe.regions(x))
    lat = torch.nn.functional.max_pool2d(out.regions, 4)  # the latent mask: 0 where no pixel may change
    keep = (lat == 0).expand_as(out.source_latents)
    assert keep.float().mean() > 0.2
    for b in range(2):
        assert torch.equal(out.latents[b][:, keep[b]], out.source_latents[b][keep[b]].expand(3, -1))
    outside = (out.regions == 0).expand_as(x)
    assert torch.equal(out.images[outside], x[outside].clamp(-1, 1))
    inside = out.regions[:, 0] == 1
    assert (out.images - x).abs().mean(1)[inside].mean() > 0.02  # the expression did change
    free = pipe(x, "happy", generator=torch.Generator().manual_seed(0), **kw)
    assert free.regions is None and not torch.equal(free.latents[0][:, keep[0]], out.latents[0][:, keep[0]])


def test_without_a_detector_a_region_edit_says_what_is_missing(face_png):
    p = EmotionEditPipeline.from_profile("toy")
    p.region_detector = None
    with pytest.raises(ValueError, match="region detector.*region='none'"):
        p([face_png], "happy", num_particles=2, num_inference_steps=4, region="expression")


def test_the_identity_term_lowers_the_reward_of_particles_far_from_the_source():
    from emosmc.scorers import IdentityPenalty

    src = torch.randn(2, 4, 16, 16)
    x = torch.stack([src, src + 0.5], 1)  # (B, 2 particles): the source itself, a shifted one
    pen = IdentityPenalty(lambda z, t: torch.zeros(z.shape[:2]), src, beta=10.0)
    r = pen(x)
    assert torch.allclose(r[:, 0], torch.zeros(2)) and torch.allclose(r[:, 1], torch.full((2,), -2.5))


def test_min_change_puts_back_the_pixels_an_edit_barely_changed(pipe):
    """With min_change = a the pasted-back edit equals the source wherever the decoded edit changed a pixel by less
    than a, and is the decoded edit itself wherever the change is 3a or more inside the region."""
    from emosmc.edit_config import EditConfig

    x = _faces(1)
    kw = dict(num_particles=2, num_inference_steps=16, noise_strength=0.7, reward_on="x0", scorer="latent",
              guidance_scale=20.0, region="expression", paste_back=True, final_check=0, progress=False)
    plain = pipe(x, "happy", generator=torch.Generator().manual_seed(0), **kw)
    kept = pipe(x, "happy", min_change=0.1, generator=torch.Generator().manual_seed(0), **kw)
    decoded = pipe.decode(plain.smc.best)  # the same particles: min_change acts after decoding only
    change = (decoded - x).abs().amax(1, keepdim=True).expand_as(x)
    small, big = change < 0.1, (change >= 0.3) & (plain.regions == 1).expand_as(x)
    assert small.float().mean() > 0.05 and big.float().mean() > 0.005
    assert torch.equal(kept.images[small], x[small]) and torch.allclose(kept.images[big], decoded[big])
    with pytest.raises(ValueError, match="min_change.*paste_back"):
        EditConfig(min_change=0.1, region="expression")


def test_turning_the_region_off_turns_off_what_needs_it():
    from emosmc.edit_config import EditConfig
    from emosmc.profiles import get_profile

    toy = get_profile("toy").edit
    off = toy.replace(region="none")
    assert (off.region, off.paste_back, off.min_change, off.lowpass) == ("none", False, 0.0, 0)
    assert toy.replace(paste_back=False).min_change == 0.0
    with pytest.raises(ValueError, match="paste_back needs a region"):
        toy.replace(region="none", paste_back=True)
    with pytest.raises(ValueError, match="reward_on='x0'"):
        EditConfig(identity_weight=5.0)

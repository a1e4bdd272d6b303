"""The latent emotion scorer: distillation from the pixel classifier, and the pipeline's fast path."""
import pytest
import torch

from emosmc.latent_scorer import LatentEmotionReward, LatentEmotionScorer, agreement, distill_latent_scorer
from emosmc.pipeline import EmotionEditPipeline
from emosmc.profiles import get_profile
from emosmc.toy.assets import toy_faces
from emosmc.data import images_to_tensor


@pytest.fixture(scope="module")
def toy():
    prof = get_profile("toy")
    return {k: prof.load(k, "cpu") for k in ("vae", "unet", "classifier")} | {"scheduler": prof.load("scheduler")}


@pytest.fixture(scope="module")
def latents(toy):
    imgs, _, _, _ = toy_faces(12, seed=777)
    with torch.no_grad():
        z = toy["vae"].encode(images_to_tensor(imgs)).latent_dist.mean
    return z * toy["vae"].config.scaling_factor


def test_round_trip_and_reward_reads_each_rows_target(tmp_path):
    torch.manual_seed(0)
    s = LatentEmotionScorer(sample_size=16, block_channels=(16, 32)).eval()
    s.save_pretrained(tmp_path)
    t = LatentEmotionScorer.from_pretrained(tmp_path)
    z = torch.randn(2, 3, 4, 16, 16)
    r = LatentEmotionReward(t, ["happy", "sad"])(z, torch.tensor(500))
    lp = s.log_probs(z.flatten(0, 1), 500).view(2, 3, 7)
    assert torch.allclose(r[0], lp[0, :, 3], atol=1e-6) and torch.allclose(r[1], lp[1, :, 5], atol=1e-6)


def test_distillation_learns_the_teachers_labels(toy, latents):
    torch.manual_seed(0)
    before = LatentEmotionScorer(sample_size=16, block_channels=(16, 32))
    after = distill_latent_scorer(LatentEmotionScorer(sample_size=16, block_channels=(16, 32)), latents[:60],
                                  toy["vae"], toy["classifier"], toy["unet"], toy["scheduler"], steps=40,
                                  batch_size=16, clean_fraction=0.5, progress=False)
    kw = dict(timesteps=(0,), seed=3)
    a0 = agreement(before, latents[60:], toy["vae"], toy["classifier"], toy["unet"], toy["scheduler"], **kw)[0]
    a1 = agreement(after, latents[60:], toy["vae"], toy["classifier"], toy["unet"], toy["scheduler"], **kw)[0]
    seen = agreement(after, latents[:60], toy["vae"], toy["classifier"], toy["unet"], toy["scheduler"], **kw)[0]
    # it fits the teacher on the latents it saw, and generalises to new identities after 40 steps of 16
    # (24 held-out faces, clean: an untrained scorer agrees about 1/7 of the time; measured on the legible
    # world 0.25 -> 1.00, correlation 0.99; the first design's faces needed 120 steps of 32 for 0.17 -> 0.46)
    assert seen["top1_agreement"] > 0.8 and seen["target_prob_correlation"] > 0.8
    assert a1["top1_agreement"] > max(0.7, a0["top1_agreement"] + 0.3) and a1["target_prob_correlation"] > 0.7


def test_fast_path_decodes_only_the_final_check(toy, latents):
    pipe = EmotionEditPipeline(toy["vae"], toy["unet"], toy["scheduler"], toy["classifier"])
    x = pipe.decode(latents[:2])
    kw = dict(num_particles=6, num_inference_steps=10, noise_strength=0.5, generator=torch.Generator().manual_seed(0),
              progress=False)
    with pytest.raises(ValueError, match="needs a latent scorer"):
        pipe(x, "happy", scorer="latent", **kw)
    torch.manual_seed(0)
    pipe.latent_scorer = LatentEmotionScorer(sample_size=16, block_channels=(16, 32)).eval()
    out = pipe(x, ["happy", "fear"], scorer="latent", final_check=3, **kw)
    assert out.nfe["decode"] == 2 * 3 and out.nfe["unet"] == 2 * 6 * 5
    # the returned image is the particle the pixel classifier prefers among the top 3 by latent score
    top = out.smc.rewards.topk(3, dim=1).indices
    for b, t in enumerate((3, 2)):
        assert int(out.smc.best_index[b]) in top[b].tolist()
        p = pipe.classify(pipe.decode(out.latents[b, top[b]]))[:, t]
        assert float(out.probs[b, t]) == pytest.approx(float(p.max()), abs=1e-4)
    with pytest.raises(ValueError, match="unknown scorer"):
        pipe(x, "happy", scorer="vision", **kw)


def test_interrupted_distillation_resumes_to_the_same_weights(toy, latents, tmp_path, monkeypatch):
    import emosmc.latent_scorer as ls

    def fresh():
        torch.manual_seed(0)
        return LatentEmotionScorer(sample_size=16, block_channels=(8, 16))

    models = (toy["vae"], toy["classifier"], toy["unet"], toy["scheduler"])
    kw = dict(steps=6, batch_size=4, progress=False)
    whole = distill_latent_scorer(fresh(), latents[:20], *models, **kw)
    ckpt = tmp_path / "distill.pt"
    calls, kl = [0], ls.F.kl_div

    def dies_at_step_5(*a, **k):
        calls[0] += 1
        if calls[0] == 5:
            raise KeyboardInterrupt
        return kl(*a, **k)

    monkeypatch.setattr(ls.F, "kl_div", dies_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        distill_latent_scorer(fresh(), latents[:20], *models, checkpoint=ckpt, checkpoint_every=3, **kw)
    monkeypatch.setattr(ls.F, "kl_div", kl)
    assert torch.load(ckpt, weights_only=False)["step"] == 3
    model = fresh()
    torch.manual_seed(123)  # the resumed run restores the global generator (dropout) from the checkpoint
    resumed = distill_latent_scorer(model, latents[:20], *models, checkpoint=ckpt, checkpoint_every=3, **kw)
    for p, q in zip(whole.parameters(), resumed.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    with pytest.raises(ValueError, match="6-step run, not 9"):
        distill_latent_scorer(fresh(), latents[:20], *models, checkpoint=ckpt, **{**kw, "steps": 9})
    with pytest.raises(ValueError, match="another run.*latents: 20 there, 16 here"):
        distill_latent_scorer(fresh(), latents[:16], *models, checkpoint=ckpt, **kw)

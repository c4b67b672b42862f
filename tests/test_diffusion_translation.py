"""Diffusion translators (issue 17): ``diffusion`` (conditional DDPM, DDIM sampling) and
``msspade`` (MS-SPADE latent diffusion), on tiny slices and volumes with MONAI's
generative components; end to end through ``xhbench run`` with one pair."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from xhbench.cli import cli
from xhbench.harness.config import resolve
from xhbench.results import find_runs
from xhbench.methods.translation.diffusion import Diffusion
from xhbench.methods.translation.mddiff import MDDiff
from xhbench.methods.translation.msspade import MSSPADE
from xhbench.plugins import get_plugins
from xhbench.tasks.base import TaskSpec

CPU = torch.device("cpu")
NAMES = ("T1", "T2")
SPEC = TaskSpec("syn", "synthesis", NAMES, NAMES)


def quiet(_msg: str) -> None:
    pass


def build(method_cls, seed=0, **overrides):
    torch.manual_seed(seed)
    values = {"pairs": "T1->T2", "intensity_scale": "4.0",
              **{k: str(v) for k, v in overrides.items()}}
    config = resolve(method_cls.name, method_cls.Config, method_cls.profiles, "smoke", values)
    return method_cls(config, SPEC, CPU)


def pair_volume(shape, seed=0):
    """A smooth T1 and a T2 that is a fixed nonlinear function of it, inside a brain box."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(1, 1, *shape, generator=g)
    smooth = torch.nn.functional.avg_pool3d(noise, (3, 3, 1), stride=1,
                                            padding=(1, 1, 0))[0, 0] * 3
    brain = torch.zeros(shape)
    brain[2:-2, 2:-2] = 1
    t1 = smooth * brain
    return torch.stack([t1, (1.5 - t1.abs()) * brain]), brain[None]


def sample(shape, seed=0):
    target, brain = pair_volume(shape, seed)
    return {"image": target * torch.tensor([1.0, 0.0])[:, None, None, None], "target": target,
            "foreground": brain, "available": np.array([True, False])}


def model_pair(method, shape, seed=0):
    target, brain = pair_volume(shape, seed)
    x = method.to_model_space(method.normalise(target[None, 0:1], 0))
    y = method.to_model_space(method.normalise(target[None, 1:2], 1))
    return x, y, method.to_model_space(brain[None])


# --- diffusion ------------------------------------------------------------------------

def test_diffusion_is_monai_unet_on_noisy_target_and_source(one_torch_thread):
    from monai.networks.nets import DiffusionModelUNet
    from monai.networks.schedulers import DDIMScheduler, DDPMScheduler

    method = build(Diffusion)
    unet = method.models["T1->T2"].unet
    assert isinstance(unet, DiffusionModelUNet)
    assert unet.in_channels == 2 and unet.out_channels == 1  # [x_t, source] -> noise
    assert isinstance(method.ddpm, DDPMScheduler)
    scheduler = method.sample_scheduler()
    assert isinstance(scheduler, DDIMScheduler) and len(scheduler.timesteps) == 4
    assert method.ddpm.alphas_cumprod == pytest.approx(scheduler.alphas_cumprod)


def test_diffusion_noise_prediction_loss_falls_on_a_fixed_batch(one_torch_thread):
    method = build(Diffusion, lr=3e-3, decay_start=1.0, steps=30)
    x, y, _ = model_pair(method, (32, 32, 2))
    g = torch.Generator().manual_seed(5)
    noise = torch.randn(y.shape, generator=g)
    timesteps = torch.tensor([100, 700])

    def loss():
        method.models.eval()
        with torch.no_grad():
            return float(method.noise_loss("T1->T2", x, y, noise, timesteps))

    before = loss()
    history = method.fit([sample((32, 32, 2))], None, quiet)
    assert history["steps"] == 30
    after = loss()
    assert np.isfinite(before) and after < 0.7 * before, (before, after)


@pytest.mark.parametrize("steps", [3, 7])
def test_ddim_with_n_steps_calls_the_network_n_times(one_torch_thread, steps):
    method = build(Diffusion, sampling_steps=steps)
    x, _, _ = model_pair(method, (32, 32, 2))
    calls = []
    unet = method.models["T1->T2"].unet
    handle = unet.register_forward_hook(lambda *_: calls.append(1))
    method.models.eval()
    with torch.no_grad():
        out = method.translate("T1->T2", "T1", "T2", x)
    handle.remove()
    assert len(calls) == steps
    assert out.shape == x.shape and out.abs().max() <= 1.0


def test_sampling_is_deterministic_for_a_seed_and_reports_its_cost(one_torch_thread):
    method = build(Diffusion)
    volume = pair_volume((32, 32, 4))[0].numpy()
    image = volume * np.array([1, 0], np.float32)[:, None, None, None]
    first = method.predict(image, (True, False))
    again = method.predict(image, (True, False))  # the noise restarts at the seed per case
    np.testing.assert_array_equal(first, again)
    other = build(Diffusion, sample_seed=1)
    other.load_state_dict(method.state_dict())
    assert not np.array_equal(other.predict(image, (True, False))[1], first[1])
    cost = method.sampling_cost()
    # 4 slices in one batch of sw_batch_size 4: one window batch, 4 DDIM steps, 2 cases
    assert cost["sampling_steps"] == 4 and cost["sampled_volumes"] == 2
    assert cost["network_evaluations"] == 2 * 4 and cost["seconds"] > 0


def test_diffusion_profiles_and_registration():
    paper = resolve("d", Diffusion.Config, Diffusion.profiles, "paper")
    assert (paper.lr, paper.train_timesteps, paper.roi[:2], paper.decay_start) == \
        (1e-4, 1000, (256, 256), 1.0)
    assert paper.attention_levels == (False, False, False, True, True, True)
    registry = get_plugins().registry
    entry = registry.get("method", "diffusion")
    assert entry.meta["kinds"] == ("synthesis",)
    assert {"brats23_transfer", "autopet_transfer"} <= set(registry.tasks_supported_by(entry))


# --- MS-SPADE -------------------------------------------------------------------------

CUBE = (16, 16, 16)


def build_spade(**overrides):
    return build(MSSPADE, roi="16,16,16", **overrides)


def test_msspade_is_monai_autoencoder_and_spade_unet(one_torch_thread):
    from monai.networks.nets import AutoencoderKL, PatchDiscriminator, SPADEDiffusionModelUNet

    method = build_spade(pairs="all")
    assert list(method.models) == ["switchable"]  # one model for every pair
    model = method.models["switchable"]
    assert isinstance(model.autoencoder, AutoencoderKL)
    assert isinstance(model.discriminator, PatchDiscriminator)
    assert isinstance(model.unet, SPADEDiffusionModelUNet)
    assert model.unet.label_nc == 3 + len(NAMES)  # source latent + target one-hot
    assert [s.name for s in method.stages()] == ["autoencoder", "diffusion"]


@pytest.mark.parametrize("ae_channels, factor", [("8,8", 2), ("8,8,8", 4)])
def test_msspade_latent_shape_matches_the_config(one_torch_thread, ae_channels, factor):
    method = build_spade(ae_channels=ae_channels, latent_channels=2)
    x, _, _ = model_pair(method, CUBE)
    with torch.no_grad():
        latent = method.encode("switchable", x)
        decoded = method.models["switchable"].autoencoder.decode(latent)
    assert latent.shape == (1, 2, *(s // factor for s in CUBE))
    assert decoded.shape == x.shape


def test_msspade_autoencoder_round_trips_after_its_stage(one_torch_thread):
    # one diffusion step (steps must be >= 1): it leaves the frozen autoencoder as it is
    method = build_spade(ae_steps=40, ae_lr=3e-3, steps=1)
    x, y, _ = model_pair(method, CUBE)
    model = method.models["switchable"]

    def round_trip_error():
        model.eval()
        with torch.no_grad():
            return float((model.autoencoder.reconstruct(torch.cat([x, y])) -
                          torch.cat([x, y])).abs().mean())

    before = round_trip_error()
    history = method.fit([sample(CUBE)], None, quiet)
    assert history["steps"] == 41
    after = round_trip_error()
    assert after < 0.5 * before, (before, after)
    model.train()
    _, terms = method.autoencoder_losses(model, x)
    assert all(torch.isfinite(v) and v > 0 for v in terms.values()), terms


def test_msspade_logs_the_weighted_autoencoder_terms_it_steps_on(one_torch_thread,
                                                                  monkeypatch):
    logged, backward = {}, {}
    for weight in (1.0, 2.0):
        method = build_spade(kl_weight=weight, adv_weight=weight)
        x, y, fg = model_pair(method, CUBE)
        losses = backward[weight] = []
        monkeypatch.setattr(method, "manual_backward",
                            lambda loss: (losses.append(float(loss.detach())), loss.backward()))
        stage = method.stages()[0]
        method.on_stage(stage)
        key = method.model_key("T1", "T2")
        terms = method.train_step(key, "T1", "T2", x, y, fg, method.make_optimizers(key, stage))
        logged[weight] = {name: float(value) for name, value in terms.items()}
    for weight, terms in logged.items():
        autoencoder = terms["L1"] + terms["KL"] + terms["G_adv"]
        assert backward[weight] == pytest.approx([autoencoder, terms["D"]], rel=1e-5)
    assert logged[2.0]["L1"] == pytest.approx(logged[1.0]["L1"], rel=1e-5)
    for name in ("KL", "G_adv"):  # same seed, same first step: the weight alone scales it
        assert logged[2.0][name] == pytest.approx(2 * logged[1.0][name], rel=1e-5)


def test_msspade_spade_condition_and_target_switch_change_the_output(one_torch_thread):
    method = build_spade(pairs="all")
    x, y, _ = model_pair(method, CUBE)
    model = method.models["switchable"]
    model.eval()
    with torch.no_grad():
        # MONAI zero-initialises the output conv and each residual block's last conv, so
        # an untrained U-Net ignores its SPADE inputs: give those layers weights first
        for parameter in model.unet.parameters():
            if parameter.dim() > 1 and not parameter.any():
                parameter.normal_(0, 0.1)
        noisy = torch.randn(1, 3, 8, 8, 8, generator=torch.Generator().manual_seed(0))
        t = torch.tensor([500])
        base = model.unet(noisy, t, seg=method.condition("switchable", "T2", x))
        other_source = model.unet(noisy, t, seg=method.condition("switchable", "T2", y))
        other_target = model.unet(noisy, t, seg=method.condition("switchable", "T1", x))
        again = model.unet(noisy, t, seg=method.condition("switchable", "T2", x))
    torch.testing.assert_close(base, again)
    assert (base - other_source).abs().max() > 1e-4
    assert (base - other_target).abs().max() > 1e-4


def test_msspade_diffusion_stage_loss_falls_and_ddim_calls_the_unet_n_times(one_torch_thread):
    method = build_spade(ae_steps=2, steps=30, lr=3e-3, sampling_steps=5)
    x, y, _ = model_pair(method, CUBE)
    method.fit([sample(CUBE)], None, quiet)  # sets the latent scale on its first batch
    model = method.models["switchable"]
    assert float(model.latent_scale) > 0
    noise = torch.randn(4, 3, 8, 8, 8, generator=torch.Generator().manual_seed(1))
    timesteps = torch.tensor([100, 300, 600, 900])
    x, y = x.expand(4, -1, -1, -1, -1), y.expand(4, -1, -1, -1, -1)
    model.eval()
    with torch.no_grad():
        trained = float(method.noise_loss("switchable", "T2", x, y, noise, timesteps))
    fresh = build_spade(ae_steps=2, steps=1, sampling_steps=5)
    fresh.fit([sample(CUBE)], None, quiet)
    fresh.models.eval()
    with torch.no_grad():
        untrained = float(fresh.noise_loss("switchable", "T2", x, y, noise, timesteps))
    assert trained < 0.9 * untrained, (untrained, trained)
    x = x[:1]
    calls = []
    handle = model.unet.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        out = method.translate("switchable", "T1", "T2", x)
    handle.remove()
    assert len(calls) == 5 and out.shape == x.shape and out.abs().max() <= 1.0
    image = (pair_volume(CUBE)[0] * torch.tensor([1.0, 0.0])[:, None, None, None]).numpy()
    np.testing.assert_array_equal(method.predict(image, (True, False)),
                                  method.predict(image, (True, False)))


# --- MD-Diff --------------------------------------------------------------------------

def test_mddiff_representation_stage_terms_and_mask(one_torch_thread):
    method = build(MDDiff, patch=8, mask_ratio=0.5)
    x, y, fg = model_pair(method, (32, 32, 2))
    model = method.models["T1->T2"]
    torch.manual_seed(0)
    masks = torch.stack([method.mask(y) for _ in range(50)])
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    assert float(masks.mean()) == pytest.approx(0.5, abs=0.08)
    blocks = masks[:, :, :, ::8, ::8]  # constant over each 8 x 8 patch
    torch.testing.assert_close(masks, blocks.repeat_interleave(8, 3).repeat_interleave(8, 4))
    assert model.fe(y).shape == (2, 4, 16)  # tokens x width
    terms = method.representation_terms(model, x, y, fg)
    assert set(terms) == {"MRM", "syn"}
    assert all(torch.isfinite(v) and v > 0 for v in terms.values())


def test_mddiff_representation_guides_the_unet_and_ddim_calls_the_mdn_n_times(one_torch_thread):
    method = build(MDDiff, sampling_steps=6)
    x, _, _ = model_pair(method, (32, 32, 2))
    model = method.models["T1->T2"]
    model.eval()
    with torch.no_grad():
        for parameter in model.unet.parameters():  # MONAI zero-initialises some convs
            if parameter.dim() > 1 and not parameter.any():
                parameter.normal_(0, 0.1)
        z = torch.randn(2, 4, 16, generator=torch.Generator().manual_seed(0))
        assert (method.synthesise(model, x, z) - method.synthesise(model, x, -z)).abs().max() > 1e-4
        calls = []
        handle = model.mdn.register_forward_hook(lambda *_: calls.append(1))
        out = method.translate("T1->T2", "T1", "T2", x)
        handle.remove()
    assert len(calls) == 6 and out.shape == x.shape and out.abs().max() <= 1.0
    image = (pair_volume((32, 32, 4))[0] * torch.tensor([1.0, 0.0])[:, None, None, None]).numpy()
    np.testing.assert_array_equal(method.predict(image, (True, False)),
                                  method.predict(image, (True, False)))
    assert method.sampling_cost()["network_evaluations"] == 6 + 2 * 6


# --- end to end -------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["diffusion", "msspade", "mddiff"])
def test_smoke_run_records_sampling_cost(tmp_path, method):
    args = ["run", "--task", "brats23_transfer", "--method", method, "--profile", "smoke",
            "--set", "task.pairs=T1->T2", "--set", "method.pairs=T1->T2",
            "--out", str(tmp_path)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (run,) = find_runs(tmp_path, "brats23_transfer")[0]
    cost = json.loads(run.file("cost.json").read_text())
    sampling = cost["sampling"]
    assert sampling["sampling_steps"] == 4 and sampling["network_evaluations"] > 0
    rows = run.cases()
    assert sampling["seconds_per_case"] == pytest.approx(sampling["seconds"]
                                                         / rows["case"].nunique())
    board = CliRunner().invoke(cli, ["leaderboard", "--task", "brats23_transfer", "--results",
                                     str(tmp_path), "--cost"], catch_exceptions=False)
    header, _, line = board.output.splitlines()[:3]
    cells = dict(zip([c.strip() for c in header.split("|")], [c.strip() for c in line.split("|")]))
    assert cells["sampling steps"] == "4"
    assert float(cells["sampling s/case"]) == pytest.approx(sampling["seconds_per_case"], abs=0.01)
    assert set(rows["target"]) == {"T1->T2"} and rows["value"].notna().all()

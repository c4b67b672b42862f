"""The GAN translators of issue 17: ``cut`` (PatchNCE), ``gcgan`` (geometry consistency),
``eagan`` (edge-aware), ``nicegan`` (discriminator as encoder). Per method: the defining
loss is finite and non-zero, and switching it off removes it; end to end with one pair."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from xhbench.cli import cli
from xhbench.harness.config import resolve
from xhbench.results import find_runs
from xhbench.methods.translation.cut import CUT, patch_nce
from xhbench.methods.translation.eagan import EaGAN, edge_map, sobel_magnitude
from xhbench.methods.translation.gcgan import GcGAN, transform
from xhbench.methods.translation.nicegan import NICEGAN
from xhbench.plugins import get_plugins
from xhbench.tasks.base import TaskSpec

CPU = torch.device("cpu")
NAMES = ("T1", "T2")
SPEC = TaskSpec("syn", "synthesis", NAMES, NAMES)
SLICES = (32, 32, 2)


def build(method_cls, seed=0, **overrides):
    torch.manual_seed(seed)
    values = {"pairs": "T1->T2", "intensity_scale": "4.0",
              **{k: str(v) for k, v in overrides.items()}}
    config = resolve(method_cls.name, method_cls.Config, method_cls.profiles, "smoke", values)
    return method_cls(config, SPEC, CPU)


def model_pair(method, shape=SLICES, seed=0):
    """A smooth T1 and a T2 that is a nonlinear function of it, in model space."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(1, 1, *shape, generator=g)
    kernel = (3, 3, 1) if method.dims == 2 else (3, 3, 3)
    t1 = torch.nn.functional.avg_pool3d(noise, kernel, stride=1,
                                        padding=tuple(k // 2 for k in kernel))[0, 0] * 3
    brain = torch.zeros(shape)
    brain[2:-2, 2:-2] = 1
    t1 = t1 * brain
    t2 = (1.5 - t1.abs()) * brain
    x = method.to_model_space(method.normalise(t1[None, None], 0))
    y = method.to_model_space(method.normalise(t2[None, None], 1))
    return x, y, method.to_model_space(brain[None, None])


def unchanged(module, before):
    return all(torch.equal(p, before[n]) for n, p in module.named_parameters())


def snapshot(module):
    return {n: p.detach().clone() for n, p in module.named_parameters()}


# --- CUT ------------------------------------------------------------------------------

def test_patch_nce_matches_the_hand_computed_cross_entropy():
    p, t = 4, 0.5
    features = torch.eye(p)[None]  # orthonormal: positive 1, negatives 0, diagonal -10
    expected = -math.log(math.exp(1 / t) / (math.exp(1 / t) + (p - 1) + math.exp(-10 / t)))
    assert float(patch_nce(features, features, t)) == pytest.approx(expected, rel=1e-5)
    swapped = torch.eye(p)[[1, 0, 2, 3]][None]  # patches 0 and 1 swap: they lose
    assert float(patch_nce(features, swapped, t)) > float(patch_nce(features, features, t))


def test_cut_patch_nce_is_finite_and_switching_it_off_removes_it(one_torch_thread):
    method = build(CUT)
    x, y, fg = model_pair(method)
    model = method.models["T1->T2"]
    _, terms = method.generator_terms(model, x, y)
    assert set(terms) == {"G_gan", "NCE"}
    assert torch.isfinite(terms["NCE"]) and terms["NCE"] > 0
    # the NCE heads learn from PatchNCE only: with lambda_NCE 0 there is no term and the
    # heads never change
    off = build(CUT, lambda_nce=0)
    model = off.models["T1->T2"]
    assert set(off.generator_terms(model, x, y)[1]) == {"G_gan"}
    heads = snapshot(model.heads)
    opts = off.make_optimizers("T1->T2", off.stages()[0])
    losses = off.train_step("T1->T2", "T1", "T2", x, y, fg, opts)
    assert "NCE" not in losses and unchanged(model.heads, heads)
    on = build(CUT)
    heads = snapshot(on.models["T1->T2"].heads)
    on.train_step("T1->T2", "T1", "T2", x, y, fg, on.make_optimizers("T1->T2", on.stages()[0]))
    assert not unchanged(on.models["T1->T2"].heads, heads)


def test_cut_uses_the_generators_encoder_and_fastcut_drops_the_identity_term(one_torch_thread):
    method = build(CUT, n_blocks=6)
    model = method.models["T1->T2"]
    x, y, _ = model_pair(method)
    feats = method.features(model, x)
    assert [f.shape[1] for f in feats] == [1, 16, 32, 32, 32]  # input, 2 ngf, 4 ngf, blocks
    assert [f.shape[2] for f in feats] == [38, 16, 8, 8, 8]  # padded input, /2, /4
    calls = []
    handle = model.generator.register_forward_hook(lambda *_: calls.append(1))
    method.generator_terms(model, x, y)
    fast = build(CUT, n_blocks=6, lambda_nce=10, nce_idt=False, flip_equivariance=True)
    fast.models["T1->T2"].generator.register_forward_hook(lambda *_: calls.append(2))
    fast.generator_terms(fast.models["T1->T2"], x, y)
    handle.remove()
    assert calls == [1, 1, 2]  # CUT: G(x) and G(y) (identity NCE); FastCUT: G(x) only


# --- GcGAN ----------------------------------------------------------------------------

def test_gcgan_transforms_match_numpy_and_invert():
    images = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    rotated = transform(images, "rot")
    np.testing.assert_array_equal(rotated.numpy(), np.rot90(images.numpy(), k=-1, axes=(2, 3)))
    torch.testing.assert_close(transform(rotated, "rot", inverse=True), images)
    np.testing.assert_array_equal(transform(images, "vf").numpy(), images.numpy()[:, :, ::-1])


@pytest.mark.parametrize("geometry", ["rot", "vf"])
def test_gcgan_geometry_term_is_finite_and_switching_it_off_removes_it(one_torch_thread,
                                                                      geometry):
    method = build(GcGAN, geometry=geometry)
    x, y, fg = model_pair(method)
    model = method.models["T1->T2"]
    fake, fake_gc, terms = method.generator_terms(model, x, y, fg)
    assert set(terms) == {"G_gan", "geometry", "identity"}
    assert torch.isfinite(terms["geometry"]) and terms["geometry"] > 0
    # hand check of the term: both directions, lambda_AB * lambda_gc = 20
    f, back = transform(fake_gc, geometry, inverse=True), transform(fake, geometry)
    fg_gc = transform(fg, geometry)
    manual = (((fake - f).abs() * fg).sum() / fg.sum()
              + ((fake_gc - back).abs() * fg_gc).sum() / fg_gc.sum()) * 20
    assert float(terms["geometry"].detach()) == pytest.approx(float(manual.detach()), rel=1e-5)
    off = build(GcGAN, geometry=geometry, lambda_gc=0, identity=0)
    assert set(off.generator_terms(off.models["T1->T2"], x, y, fg)[2]) == {"G_gan"}


def test_gcgan_refuses_non_square_slices_for_rotation():
    from xhbench.errors import ConfigError

    with pytest.raises(ConfigError, match="square"):
        build(GcGAN, roi="32,64,2")
    assert build(GcGAN, roi="32,64,2", geometry="vf").pairs == [("T1", "T2")]


# --- EaGAN ----------------------------------------------------------------------------

def test_sobel_magnitude_matches_scipy():
    from scipy import ndimage

    volume = np.random.default_rng(0).normal(size=(9, 10, 11)).astype(np.float32)
    expected = np.sqrt(sum(ndimage.sobel(volume, axis=a, mode="nearest") ** 2
                           for a in range(3)))
    got = sobel_magnitude(torch.from_numpy(volume)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)


def test_edge_map_squashes_the_sobel_magnitude_as_the_authors_code():
    """E(v) = 2 tanh(|S(v)| / 4) - 1: -1 on a flat region; a unit step along one axis has
    |S| = 16 (the [1, 2, 1] x [1, 2, 1] weights) beside it, so E = 2 tanh(4) - 1 there."""
    step = torch.zeros(1, 1, 6, 6, 6)
    step[..., 3:, :, :] = 1.0
    edges = edge_map(step)[0, 0]
    assert edges.shape == (6, 6, 6)
    torch.testing.assert_close(edges[0], torch.full((6, 6), -1.0), atol=1e-3, rtol=0)
    expected = 2 * np.tanh(4.0) - 1
    torch.testing.assert_close(edges[2], torch.full((6, 6), expected), atol=1e-4, rtol=0)
    torch.testing.assert_close(edges[3], torch.full((6, 6), expected), atol=1e-4, rtol=0)
    noise = torch.from_numpy(np.random.default_rng(1).normal(size=(1, 1, 8, 8, 8))
                             .astype(np.float32))
    torch.testing.assert_close(edge_map(noise), 2 * torch.tanh(sobel_magnitude(noise) / 4) - 1)
    assert float(edge_map(noise * 100).max()) <= 1.0  # bounded, however strong the edge


@pytest.mark.parametrize("variant, d_channels", [("gea", 2), ("dea", 3)])
def test_eagan_edge_term_is_finite_and_switching_it_off_removes_it(one_torch_thread, variant,
                                                                  d_channels):
    method = build(EaGAN, variant=variant, roi="16,16,16", num_downs=3, n_layers_d=2)
    x, y, fg = model_pair(method, (16, 16, 16))
    model = method.models["T1->T2"]
    assert model.discriminator.layers[0][0].in_channels == d_channels
    fake = model.generator(x)
    terms = method.generator_terms(model, x, y, fg, fake)
    assert set(terms) == {"G_gan", "L1", "edge"}
    assert torch.isfinite(terms["edge"]) and terms["edge"] > 0
    manual = 300 * ((edge_map(fake) - edge_map(y)).abs() * fg).sum() / fg.sum()
    assert float(terms["edge"].detach()) == pytest.approx(float(manual.detach()), rel=1e-5)
    l1 = 300 * ((fake - y).abs() * fg).sum() / fg.sum()  # pix2pix's term, eagan's weight
    assert float(terms["L1"].detach()) == pytest.approx(float(l1.detach()), rel=1e-5)
    off = build(EaGAN, variant=variant, roi="16,16,16", num_downs=3, n_layers_d=2, lambda_edge=0)
    assert set(off.generator_terms(off.models["T1->T2"], x, y, fg, fake)) == {"G_gan", "L1"}
    judged = method.judged(x, y)
    assert judged.shape[1] == d_channels
    torch.testing.assert_close(judged[:, :2], torch.cat([x, y], dim=1))  # pix2pix's pair
    if variant == "dea":
        torch.testing.assert_close(judged[:, 2:], edge_map(y))


# --- NICE-GAN -------------------------------------------------------------------------

def test_nicegan_generators_decode_the_discriminators_encoders(one_torch_thread):
    method = build(NICEGAN)
    model = method.models["T1<->T2"]
    x, y, fg = model_pair(method)
    assert not [n for n, _ in model.named_parameters() if n.startswith("enc_")]
    before = method.translate("T1<->T2", "T1", "T2", x).detach()
    with torch.no_grad():
        model.d_a.encoder[1].bias.add_(0.5)  # the T1 discriminator's encoder
    after = method.translate("T1<->T2", "T1", "T2", x).detach()
    assert (before - after).abs().max() > 1e-4
    _, _, terms = method.generator_terms(model, x, y, fg)
    assert set(terms) == {"G_gan", "cycle", "recon"}
    assert all(torch.isfinite(v) and v > 0 for v in terms.values())
    # switched off (the paper's ablation): generators encode with their own encoders
    own = build(NICEGAN, shared_encoder=False)
    model = own.models["T1<->T2"]
    before = own.translate("T1<->T2", "T1", "T2", x).detach()
    with torch.no_grad():
        model.d_a.encoder[1].bias.add_(0.5)
    torch.testing.assert_close(own.translate("T1<->T2", "T1", "T2", x).detach(), before)


@pytest.mark.parametrize("shared", [True, False])
def test_nicegan_encoders_learn_from_the_discriminator_only(one_torch_thread, shared):
    method = build(NICEGAN, shared_encoder=shared)
    model = method.models["T1<->T2"]
    x, y, fg = model_pair(method)
    opts = method.make_optimizers("T1<->T2", method.stages()[0])
    for group in opts["D"].param_groups:
        group["lr"] = 0.0  # no discriminator update: what moves comes from the G step
    encoders, decoders = snapshot(model.d_a.encoder), snapshot(model.dec_b)
    own = snapshot(model.enc_a) if not shared else None
    method.train_step("T1<->T2", "T1", "T2", x, y, fg, opts)
    assert unchanged(model.d_a.encoder, encoders)  # decoupled: G's loss never steps them
    assert not unchanged(model.dec_b, decoders)
    if not shared:
        assert not unchanged(model.enc_a, own)


# --- registration and end to end --------------------------------------------------------

NEW_METHODS = ("cut", "gcgan", "eagan", "nicegan")


def test_registered_for_the_transfer_tasks():
    registry = get_plugins().registry
    for name in NEW_METHODS:
        entry = registry.get("method", name)
        assert entry.meta["kinds"] == ("synthesis",)
        assert {"brats23_transfer", "autopet_transfer"} <= set(registry.tasks_supported_by(entry))
        assert set(registry.load("method", name).profiles) == {"smoke", "default", "paper"}


@pytest.mark.parametrize("method", NEW_METHODS)
def test_smoke_run_completes(tmp_path, method):
    args = ["run", "--task", "brats23_transfer", "--method", method, "--profile", "smoke",
            "--set", "task.pairs=T1->T2", "--set", "method.pairs=T1->T2",
            "--out", str(tmp_path)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (run,) = find_runs(tmp_path, "brats23_transfer")[0]
    rows = run.cases()
    assert set(rows["target"]) == {"T1->T2"} and rows["value"].notna().all()

"""Translation baselines (issue 7): pix2pix2d/3d, cyclegan2d/3d, resvit, spadegan, reggan.

Method-level tests run on tiny crops (32^2 slices, 16^3-32^3 volumes, a handful of
steps). End to end, ``xhbench run --task brats23_transfer --method M --profile smoke``
runs for every method: pix2pix2d (whose run also feeds the Table 1 leaderboard, the
figures and the checkpoint-route checks), cyclegan2d and reggan by default, the 3D
methods and resvit under ``-m slow``, as is the Table 1 check with all seven.
"""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from xhbench.cli import cli
from xhbench.errors import ConfigError
from xhbench.harness.config import resolve
from xhbench.harness.figures import load_run
from xhbench.results import find_runs
from xhbench.methods.translation.base import Stage, linear_decay, slicewise
from xhbench.methods.translation.cyclegan import CycleGAN2D, CycleGAN3D
from xhbench.methods.translation.spadegan import SPADEGAN
from xhbench.methods.translation.networks import UNetGenerator
from xhbench.methods.translation.pix2pix import Pix2Pix2D, Pix2Pix3D
from xhbench.methods.translation.reggan import RegGAN, warp
from xhbench.methods.translation.resvit import ResViT
from xhbench.plugins import get_plugins
from xhbench.tasks.base import TaskSpec

CPU = torch.device("cpu")
NAMES = ("T1", "T2")
SPEC = TaskSpec("syn", "synthesis", NAMES, NAMES)
METHODS = (Pix2Pix2D, Pix2Pix3D, CycleGAN2D, CycleGAN3D, ResViT, SPADEGAN, RegGAN)
# per method: crop (2D: 32x32 and 2 slices; 3D: a cube) and smoke overrides for speed
SHAPES = {"pix2pix2d": ((32, 32, 2), {}), "pix2pix3d": ((32, 32, 32), {}),
          "cyclegan2d": ((32, 32, 2), {}), "cyclegan3d": ((16, 16, 16), {"roi": "16,16,16",
                                                                      "n_layers_d": "2"}),
          "resvit": ((32, 32, 2), {}), "spadegan": ((16, 16, 16), {"roi": "16,16,16",
                                                                   "num_d": "1"}),
          "reggan": ((32, 32, 2), {})}
REGISTRY_NAMES = {"pix2pix2d", "pix2pix3d", "cyclegan2d", "cyclegan3d", "resvit", "spadegan",
                  "reggan"}


def quiet(_msg: str) -> None:
    pass


def build(method_cls, seed=0, spec=SPEC, **overrides):
    torch.manual_seed(seed)
    shape_overrides = SHAPES[method_cls.name][1]
    values = {"pairs": "T1->T2", "intensity_scale": "4.0", **shape_overrides,
              **{k: str(v) for k, v in overrides.items()}}
    config = resolve(method_cls.name, method_cls.Config, method_cls.profiles, "smoke", values)
    return method_cls(config, spec, CPU)


def pair_volume(shape, seed=0):
    """A smooth T1 and a T2 that is a fixed nonlinear function of it, inside a brain box."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(1, 1, *shape, generator=g)
    kernel = (3, 3, 1) if shape[-1] <= 2 else (3, 3, 3)
    smooth = torch.nn.functional.avg_pool3d(noise, kernel, stride=1,
                                            padding=tuple(k // 2 for k in kernel))[0, 0] * 3
    brain = torch.zeros(shape)
    lo = [max(1, s // 8) if s > 2 else 0 for s in shape]
    brain[lo[0]:shape[0] - lo[0], lo[1]:shape[1] - lo[1], lo[2]:shape[2] - lo[2]] = 1
    t1 = smooth * brain
    t2 = (1.5 - t1.abs()) * brain
    return torch.stack([t1, t2]), brain[None]


def sample(shape, seed=0):
    target, brain = pair_volume(shape, seed)
    available = np.array([True, False])
    return {"image": target * torch.tensor([1.0, 0.0])[:, None, None, None], "target": target,
            "foreground": brain, "available": available}


def model_pair(method, shape, seed=0):
    """The fixed (x, y, foreground) of T1->T2 in the model's normalised space."""
    target, brain = pair_volume(shape, seed)
    x = method.to_model_space(method.normalise(target[None, 0:1], 0))
    y = method.to_model_space(method.normalise(target[None, 1:2], 1))
    return x, y, method.to_model_space(brain[None])


def generator_parameters(method):
    return {name: p.detach().clone() for name, p in method.models.named_parameters()
            if "discriminator" not in name and ".d_" not in name}


# --- build: dims, shapes, range -----------------------------------------------------

@pytest.mark.parametrize("method_cls", METHODS, ids=lambda m: m.name)
def test_builds_for_its_dims_and_output_has_the_target_shape_and_range(method_cls):
    assert method_cls.name in REGISTRY_NAMES
    method = build(method_cls)
    convs = {type(m) for m in method.models.modules() if isinstance(m, torch.nn.modules.conv._ConvNd)}
    wanted = (torch.nn.Conv2d, torch.nn.ConvTranspose2d) if method.dims == 2 else \
        (torch.nn.Conv3d, torch.nn.ConvTranspose3d)
    assert convs and convs <= set(wanted), convs
    assert method.dims == (2 if method_cls.name in ("pix2pix2d", "cyclegan2d", "resvit",
                                                    "reggan") else 3)
    assert method.parameter_count() > 0
    shape = SHAPES[method_cls.name][0]
    x, y, _ = model_pair(method, shape)
    method.models.eval()
    with torch.no_grad():
        out = method.translate(method.model_key("T1", "T2"), "T1", "T2", x * 5)  # saturating input
    assert out.shape == y.shape
    assert out.abs().max() <= 1.0
    # predict: the whole volume, every channel, in the task's (z-scored) space
    volume = pair_volume((32, 32, 6) if method.dims == 2 else (shape[0], shape[1], 8))[0]
    image = (volume * torch.tensor([1.0, 0.0])[:, None, None, None]).numpy()
    prediction = method.predict(image, (True, False))
    assert prediction.shape == volume.shape and prediction.dtype == np.float32
    assert np.isfinite(prediction).all()
    assert np.abs(prediction[1]).max() <= 4.0 + 1e-5  # tanh times the intensity scale
    assert (prediction[0] == 0).all()  # T1->T1 was not trained: zeros (the z-score mean)


# --- training: the generator changes, its reconstruction term drops; state round-trips

TRAIN = {"pix2pix2d": {}, "pix2pix3d": {}, "cyclegan2d": {}, "cyclegan3d": {},
         "resvit": {"cnn_steps": 3}, "spadegan": {}, "reggan": {}}


@pytest.mark.parametrize("method_cls", METHODS, ids=lambda m: m.name)
def test_training_lowers_the_reconstruction_term_and_state_round_trips(method_cls):
    shape = SHAPES[method_cls.name][0]
    method = build(method_cls, steps=5, lr=1e-3, decay_start=1.0,
                   **TRAIN[method_cls.name])
    x, y, fg = model_pair(method, shape)
    method.models.eval()
    with torch.no_grad():
        before = float(method.reconstruction_term("T1", "T2", x, y, fg))
    weights = generator_parameters(method)
    history = method.fit([sample(shape)], None, quiet)
    assert history["updates"]["T1->T2"] == history["steps"] > 0
    changed = [name for name, p in generator_parameters(method).items()
               if not torch.equal(p, weights[name])]
    assert changed
    with torch.no_grad():
        after = float(method.reconstruction_term("T1", "T2", x, y, fg))
    assert after < before, (before, after)

    buffer = io.BytesIO()
    torch.save(method.state_dict(), buffer)
    buffer.seek(0)
    other = build(method_cls, seed=1, intensity_scale="None")
    other.load_state_dict(torch.load(buffer, weights_only=False))
    volume = pair_volume((32, 32, 4) if method.dims == 2 else shape, seed=3)[0].numpy()
    image = volume * np.array([1, 0], np.float32)[:, None, None, None]
    np.testing.assert_array_equal(method.predict(image, (True, False)),
                                  other.predict(image, (True, False)))


def one_logged_step(method, x, y, fg, monkeypatch):
    """One train_step of T1->T2 at the last stage: its logged terms and the losses it
    back-propagated, in order."""
    backward = []
    monkeypatch.setattr(method, "manual_backward",
                        lambda loss: (backward.append(float(loss.detach())), loss.backward()))
    stage = method.stages()[-1]
    method.on_stage(stage)
    key = method.model_key("T1", "T2")
    method.models.train()
    terms = method.train_step(key, "T1", "T2", x, y, fg, method.make_optimizers(key, stage))
    return {name: float(value) for name, value in terms.items()}, backward


@pytest.mark.parametrize("method_cls", METHODS, ids=lambda m: m.name)
def test_logged_terms_add_up_to_the_losses_the_optimisers_step_on(method_cls, monkeypatch):
    method = build(method_cls)
    terms, backward = one_logged_step(method, *model_pair(method, SHAPES[method_cls.name][0]),
                                      monkeypatch)
    generator = sum(value for name, value in terms.items() if name != "D")
    assert sorted(backward) == pytest.approx(sorted([generator, terms["D"]]), rel=1e-5)


def test_spadegan_logs_its_l1_term_weighted_as_pix2pix_does(monkeypatch):
    logged = {}
    for method_cls in (SPADEGAN, Pix2Pix3D):
        for weight in (1.0, 100.0):
            method = build(method_cls, lambda_l1=weight)
            x, y, fg = model_pair(method, SHAPES[method_cls.name][0])
            logged[method_cls.name, weight] = one_logged_step(method, x, y, fg, monkeypatch)[0]
    for name in ("spadegan", "pix2pix3d"):
        assert logged[name, 100.0]["L1"] == pytest.approx(100 * logged[name, 1.0]["L1"],
                                                          rel=1e-5)


def test_intensity_scale_is_estimated_from_training_crops_and_saved():
    method = build(Pix2Pix2D, steps=1, intensity_scale="None")
    assert method.scale.tolist() == [5.0, 5.0]
    data = [sample((32, 32, 2), seed=s) for s in range(2)]
    method.fit(data, None, quiet)
    peaks = [max(float(d["target"][c].abs().max()) for d in data) for c in range(2)]
    assert method.scale.tolist() == pytest.approx(peaks)
    assert method.state_dict()["scale"] == pytest.approx(peaks)


def test_load_refuses_a_checkpoint_of_other_pairs():
    state = build(Pix2Pix2D).state_dict()
    other = build(Pix2Pix2D, pairs="T2->T1")
    with pytest.raises(ConfigError, match="pairs"):
        other.load_state_dict(state)


# --- per-method structure -----------------------------------------------------------

def test_pairs_task_trains_the_pairs_the_task_scores():
    """method.pairs=task (the default) follows task.pairs; an explicit list overrides it."""
    from xhbench.harness.runner import open_task
    from xhbench.tasks.brats23_transfer import BraTS23Transfer

    config = resolve(BraTS23Transfer.name, BraTS23Transfer.Config, BraTS23Transfer.profiles,
                     "smoke", {}, {"pairs": "T1->T2,T2->FLAIR"})
    spec = open_task(BraTS23Transfer, config, None).spec
    assert spec.pairs == (("T1", "T2"), ("T2", "FLAIR"))
    assert build(Pix2Pix2D, spec=spec, pairs="task").pairs == [("T1", "T2"), ("T2", "FLAIR")]
    assert list(build(Pix2Pix2D, spec=spec, pairs="task").models) == ["T1->T2", "T2->FLAIR"]
    assert build(Pix2Pix2D, spec=spec, pairs="T1->T2").pairs == [("T1", "T2")]
    assert len(build(Pix2Pix2D, spec=spec, pairs="all").pairs) == 16
    assert build(Pix2Pix2D, pairs="task").pairs == [(s, t) for s in NAMES for t in NAMES]
    assert Pix2Pix2D.Config().pairs == "task"


def test_one_model_per_pair_cyclegan_per_unordered_pair_spadegan_one_for_all():
    assert list(build(Pix2Pix2D, pairs="all").models) == ["T1->T1", "T1->T2", "T2->T1",
                                                           "T2->T2"]
    cycle = build(CycleGAN2D, pairs="T1->T2,T2->T1")
    assert list(cycle.models) == ["T1<->T2"]
    model = cycle.models["T1<->T2"]
    x = torch.zeros(1, 1, 32, 32)
    assert cycle.translate("T1<->T2", "T1", "T2", x) is not None
    calls = []
    model.g_ab.register_forward_hook(lambda *a: calls.append("ab"))
    model.g_ba.register_forward_hook(lambda *a: calls.append("ba"))
    with torch.no_grad():
        cycle.translate("T1<->T2", "T1", "T2", x)
        cycle.translate("T1<->T2", "T2", "T1", x)
    assert calls == ["ab", "ba"]
    spade = build(SPADEGAN, pairs="all")
    assert list(spade.models) == ["switchable"]


def test_cyclegan_losses_do_not_use_the_pairing_but_pix2pix_does():
    """Pairing a with another subject's b leaves every CycleGAN term unchanged; it
    changes pix2pix's L1."""
    def terms(method, key, x, y, fg):
        optimizers = method.make_optimizers(key, Stage("probe", 1, 0.0, 0.0))  # lr 0
        losses = method.train_step(key, "T1", "T2", x, y, fg, optimizers)
        return {name: value.item() for name, value in losses.items()}

    fg = torch.ones(2, 1, 32, 32)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 1, 32, 32, generator=g), torch.rand(2, 1, 32, 32, generator=g)
    cycle = build(CycleGAN2D)
    paired = terms(cycle, "T1<->T2", x, y, fg)
    shuffled = terms(cycle, "T1<->T2", x, y.flip(0), fg)
    assert paired == pytest.approx(shuffled, rel=1e-5)
    pix = build(Pix2Pix2D)
    assert terms(pix, "T1->T2", x, y, fg)["L1"] != pytest.approx(
        terms(pix, "T1->T2", x, y.flip(0), fg)["L1"], rel=1e-3)


def test_resvit_shares_one_transformer_and_pretrains_the_res_cnn_first():
    method = build(ResViT, cnn_steps=2, steps=0, lr=1e-3)
    generator = method.models["T1->T2"].generator
    branches = [index + 1 for index, block in enumerate(generator.art) if block.has_branch]
    assert len(generator.art) == 9 and branches == [1, 6]
    assert sum(isinstance(m, type(generator.transformer)) for m in generator.modules()) == 1
    transformer = {n: p.clone() for n, p in generator.transformer.named_parameters()}
    residual = generator.art[2].residual.block[1].weight.clone()
    history = method.fit([sample((32, 32, 2))], None, quiet)
    assert history["steps"] == 2
    assert all(torch.equal(p, transformer[n]) for n, p in generator.transformer.named_parameters())
    assert not torch.equal(generator.art[2].residual.block[1].weight, residual)
    assert generator.use_transformer  # back on for inference
    with pytest.raises(ConfigError, match="position embeddings"):
        build(ResViT, infer_roi="64,64,1")


def test_spadegan_switch_selects_the_target():
    method = build(SPADEGAN, pairs="all")
    method.models.eval()
    x = torch.randn(1, 1, 16, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.3
    with torch.no_grad():
        to_t1 = method.translate("switchable", "T1", "T1", x)
        to_t2 = method.translate("switchable", "T1", "T2", x)
    assert not torch.allclose(to_t1, to_t2)


def test_reggan_warp_is_identity_at_zero_flow_and_shifts_by_whole_voxels():
    image = torch.arange(2 * 1 * 6 * 8, dtype=torch.float32).reshape(2, 1, 6, 8)
    zero = torch.zeros(2, 2, 6, 8)
    torch.testing.assert_close(warp(image, zero), image)
    shift = zero.clone()
    shift[:, 1] = 1.0  # one voxel along the second axis
    moved = warp(image, shift)
    torch.testing.assert_close(moved[..., :-1], image[..., 1:])
    volume = torch.rand(1, 1, 4, 5, 6)
    flow = torch.zeros(1, 3, 4, 5, 6)
    flow[:, 0] = 1.0
    torch.testing.assert_close(warp(volume, flow)[:, :, :-1], volume[:, :, 1:])
    method = build(RegGAN)
    registration = method.models["T1->T2"].registration
    fake = torch.rand(1, 1, 32, 32)
    assert torch.count_nonzero(registration(fake, fake)) == 0  # starts at the identity


# --- shared pieces ------------------------------------------------------------------

def test_slicewise_runs_each_axial_slice_and_stacks_them_back():
    volume = torch.rand(1, 1, 12, 10, 7)
    seen = []

    def double(batch):
        seen.append(tuple(batch.shape))
        return batch * 2

    torch.testing.assert_close(slicewise(double, volume, (16, 16), batch_size=3), volume * 2)
    assert seen and all(len(s) == 4 and s[1:] == (1, 16, 16) for s in seen)  # padded 2D windows

    def slice_mean(batch):  # each slice's output is its own (zero-padded) mean
        return batch * 0 + batch.mean(dim=(1, 2, 3), keepdim=True)

    out = slicewise(slice_mean, volume, (16, 16), batch_size=3)
    expected = volume[0, 0].sum(dim=(0, 1)) / 256  # per z, in order
    torch.testing.assert_close(out[0, 0], expected.expand(12, 10, 7))


def test_linear_decay_is_pix2pix_schedule():
    assert [linear_decay(s, 10, 0.5) for s in (0, 4)] == [1.0, 1.0]
    assert linear_decay(5, 10, 0.5) == pytest.approx(1.0)
    assert linear_decay(9, 10, 0.5) == pytest.approx(1 - 4 / 6)
    assert linear_decay(3, 10, 1.0) == 1.0


def test_unet_depth_and_sizes_are_checked():
    net = UNetGenerator(2, 1, 1, num_downs=5, ngf=4)
    assert net(torch.zeros(1, 1, 32, 32)).shape == (1, 1, 32, 32)
    with pytest.raises(ConfigError, match="divisible by 32"):
        build(Pix2Pix2D, roi="48,48,2")
    with pytest.raises(ConfigError, match="too small for the discriminator"):
        build(CycleGAN3D, roi="16,16,16", n_layers_d=3)  # 3 stride-2 layers need 24
    with pytest.raises(ConfigError, match="synthesis"):
        Pix2Pix2D(build(Pix2Pix2D).config, TaskSpec("s", "segmentation", NAMES, ("bg", "x")),
                  CPU)


def test_untrained_pair_is_zero_and_logged(caplog):
    method = build(Pix2Pix2D)
    with caplog.at_level(logging.WARNING, logger="xhbench"):
        prediction = method.predict(np.zeros((2, 32, 32, 2), np.float32), (False, True))
    assert (prediction == 0).all()
    assert "T2->T1 was not trained" in caplog.text
    caplog.clear()  # a pair the task does not score is not worth a warning
    scoring = TaskSpec("syn", "synthesis", NAMES, NAMES, pairs=(("T1", "T2"), ("T2", "T1")))
    method = build(Pix2Pix2D, spec=scoring)
    with caplog.at_level(logging.WARNING, logger="xhbench"):
        method.predict(np.zeros((2, 32, 32, 2), np.float32), (True, False))
        method.predict(np.zeros((2, 32, 32, 2), np.float32), (False, True))
    assert "T1->T1" not in caplog.text and "T2->T2" not in caplog.text
    assert "T2->T1 was not trained" in caplog.text


def test_profiles_follow_the_papers():
    for method_cls in METHODS:
        smoke = method_cls.profiles["smoke"]
        assert smoke["steps"] + smoke.get("cnn_steps", 0) <= 2 and not smoke["progress"]
        assert max(smoke["roi"][:2]) <= 32
        assert set(method_cls.profiles) == {"smoke", "default", "paper"}
    for cls in (Pix2Pix2D, Pix2Pix3D):
        paper = resolve(cls.name, cls.Config, cls.profiles, "paper")
        assert (paper.lr, paper.beta1, paper.beta2, paper.lambda_l1, paper.gan_mode,
                paper.batch_size, paper.decay_start) == (2e-4, 0.5, 0.999, 100.0, "vanilla",
                                                         1, 0.5)
    assert resolve("p", Pix2Pix2D.Config, Pix2Pix2D.profiles, "paper").num_downs == 8
    for cls in (CycleGAN2D, CycleGAN3D):
        paper = resolve(cls.name, cls.Config, cls.profiles, "paper")
        assert (paper.lr, paper.beta1, paper.lambda_cycle, paper.lambda_identity,
                paper.pool_size) == (2e-4, 0.5, 10.0, 0.5, 50)
    assert resolve("c", CycleGAN2D.Config, CycleGAN2D.profiles, "paper").n_blocks == 9
    resvit = resolve("r", ResViT.Config, ResViT.profiles, "paper")
    assert (resvit.vit_hidden, resvit.vit_layers, resvit.vit_heads, resvit.vit_mlp) == \
        (768, 12, 12, 3072)
    assert (resvit.cnn_lr, resvit.lr, resvit.lambda_l1, resvit.gan_mode) == \
        (2e-4, 1e-3, 100.0, "lsgan")
    assert resvit.transformer_blocks == (1, 6) and resvit.n_art == 9
    reggan = resolve("g", RegGAN.Config, RegGAN.profiles, "paper")
    assert (reggan.lr, reggan.lambda_adv, reggan.lambda_corr, reggan.lambda_smooth,
            reggan.decay_start) == (1e-4, 1.0, 20.0, 10.0, 1.0)
    spade = resolve("s", SPADEGAN.Config, SPADEGAN.profiles, "paper")
    assert (spade.lr, spade.lr_d, spade.beta1, spade.beta2, spade.lambda_fm) == \
        (1e-4, 4e-4, 0.0, 0.9, 10.0)


def test_registered_for_synthesis_tasks_only():
    registry = get_plugins().registry
    for name in REGISTRY_NAMES:
        entry = registry.get("method", name)
        assert entry.meta["kinds"] == ("synthesis",)
        assert "brats23_transfer" in registry.tasks_supported_by(entry)
        assert "brats18_missing" not in registry.tasks_supported_by(entry)
        assert registry.load("method", name).name == name


# --- end to end ---------------------------------------------------------------------

def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def smoke_run(root, method: str):
    """The finished smoke run of ``method`` under ``root`` (run once per session)."""
    runs = [r for r in find_runs(root, "brats23_transfer")[0] if r.summary["method"] == method]
    if not runs:
        result = invoke("run", "--task", "brats23_transfer", "--method", method, "--profile",
                        "smoke", "--out", str(root))
        assert result.exit_code == 0, result.output
        runs = [r for r in find_runs(root, "brats23_transfer")[0]
                if r.summary["method"] == method]
    assert len(runs) == 1
    return runs[0]


@pytest.fixture(scope="module")
def smoke_root(tmp_path_factory):
    return tmp_path_factory.mktemp("translation_smoke")


NAMES_BRATS = ("T1", "T1ce", "T2", "FLAIR")


def check_run(run, method):
    assert run.summary["method"] == method and run.file("checkpoint.pt").exists()
    rows = run.cases()
    assert set(rows["setting"]) == set(NAMES_BRATS)
    assert len(set(rows["target"])) == 16 and rows["value"].notna().all()
    assert run.summary["training"]["fit"]["steps"] >= 1
    assert run.summary["cost"]["parameters"] > 0


def table1(root) -> str:
    result = invoke("leaderboard", "--task", "brats23_transfer", "--results", str(root),
                    "--table", "table1", "--with-reported")
    assert result.exit_code == 0, result.output
    return result.output


def test_pix2pix2d_smoke_run_leaderboard_and_figures(smoke_root):
    run = smoke_run(smoke_root, "pix2pix2d")
    check_run(run, "pix2pix2d")
    text = table1(smoke_root)
    row = next(line for line in text.splitlines() if line.startswith("| pix2pix2d"))
    assert row.count("±") == 9  # T1->T2, T2->FLAIR, T1->T1ce x PSNR, NMSE, SSIM
    assert "Pix2Pix 2D — reported" in text and "Ours 3D — reported" in text
    out = smoke_root / "figures"
    result = invoke("figures", "--run", str(run.path), "--out", str(out), "--cases", "1")
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("*_from-*.png"))) == 4  # one per source setting
    assert (out / "training-curves.png").exists()  # from the engine's history.csv
    # the checkpoint route: the rebuilt method scores a case exactly as the run did
    task, method = load_run(run.path)
    case = task.test_cases()[0]
    item = task.prepare(task.data.read(case))
    setting = task.settings()[2]
    inputs = task.inputs(item, setting, handles_missing=method.handles_missing)
    rows = task.score(method.predict(inputs, setting.available), item, setting)
    recorded = run.cases().set_index(["case", "setting", "target", "metric"])["value"]
    assert len(rows) == 12
    for row in rows:
        key = (row["case"], row["setting"], row["target"], row["metric"])
        assert recorded[key] == pytest.approx(row["value"], rel=1e-6), key


# In-process smoke runs take 6-7 s (cyclegan2d, reggan) and 12-18 s (resvit and the 3D
# methods) on two busy CPU cores: the 3D ones and resvit are slow-marked to keep the
# default test run within its budget.
FAST_METHODS = ("cyclegan2d", "reggan")
SLOW_METHODS = ("pix2pix3d", "cyclegan3d", "resvit", "spadegan")


@pytest.mark.parametrize("method", [*FAST_METHODS,
                                    *(pytest.param(m, marks=pytest.mark.slow)
                                      for m in SLOW_METHODS)])
def test_smoke_run_completes(smoke_root, method):
    check_run(smoke_run(smoke_root, method), method)


@pytest.mark.slow
def test_table1_shows_every_translation_method_beside_the_reported_rows(smoke_root):
    for method in ("pix2pix2d", *FAST_METHODS, *SLOW_METHODS):
        smoke_run(smoke_root, method)
    lines = table1(smoke_root).splitlines()
    for method in REGISTRY_NAMES:
        assert any(line.startswith(f"| {method} [smoke") for line in lines), method
    for reported in ("Pix2Pix 2D", "CycleGAN 2D", "RegGAN 2D", "ResViT 2D", "CycleGAN 3D",
                     "Pix2Pix 3D", "MS-SPADE 3D", "Ours 3D"):
        assert any(line.startswith(f"| {reported} — reported") for line in lines), reported

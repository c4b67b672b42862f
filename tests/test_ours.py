"""The paper's method ``ours``: network, loss terms, ablation switches, cache key,
missing-modality handling, save/load, and one CLI run. Tiny 32^3 volumes, feature
size 12, Swin window 4 (the smoke profile), mostly two modalities, and one torch
thread: on the shared 2-core machine two threads under contention ran 5-20x slower
than one."""

from __future__ import annotations

import dataclasses
import types

import numpy as np
import pytest
import torch

from xhbench.errors import ConfigError
from xhbench.harness import config as cfg
from xhbench.methods.ours import losses as L
from xhbench.methods.ours.method import FINETUNING_FIELDS, PRETRAINING_FIELDS, Ours, OursConfig
from xhbench.tasks.base import TaskSpec

CPU = torch.device("cpu")
SEG2 = TaskSpec("seg2", "segmentation", ("a", "b"), ("background", "lesion"))
SYN2 = TaskSpec("syn2", "synthesis", ("a", "b"), ("a", "b"))
SEG4 = TaskSpec("seg4", "segmentation", ("flair", "t1ce", "t1", "t2"), ("bg", "ncr", "ed", "et"))
SYN_ONE = TaskSpec("syn1", "synthesis", ("t1", "t2", "flair"), ("t2",))
N = 32


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make(spec=SEG2, **overrides) -> Ours:
    config = cfg.resolve("method ours", OursConfig, Ours.profiles, "smoke", overrides)
    torch.manual_seed(0)
    return Ours(config, spec, CPU)


def volumes(batch: int, channels: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Smooth random images with a 'brain' foreground and a blob label."""
    g = torch.Generator().manual_seed(seed)
    image = torch.nn.functional.avg_pool3d(torch.randn(batch, channels, N, N, N, generator=g),
                                           5, stride=1, padding=2) * 3
    grid = torch.stack(torch.meshgrid(*[torch.arange(N)] * 3, indexing="ij")).float()
    radius = ((grid - N / 2) ** 2).sum(0).sqrt()
    foreground = (radius < 13).float()[None, None].expand(batch, 1, N, N, N).clone()
    image = image * foreground
    label = ((radius < 6)[None, None] & (image[:, :1] > -1)).long()
    return {"image": image, "foreground": foreground, "label": label,
            "target": image.clone()}


@pytest.fixture(scope="module")
def pretrained_terms():
    method = make(SEG2)
    batch = volumes(2, 2)
    with torch.no_grad():
        return method.pretraining_losses(batch, torch.Generator().manual_seed(1))


# --- building --------------------------------------------------------------------------

@pytest.mark.parametrize("spec, out", [(SEG4, 4), (SYN2, 2), (SYN_ONE, 1)])
def test_builds_for_segmentation_and_synthesis(spec, out):
    method = make(spec)
    x = torch.zeros(1, len(spec.in_channels), N, N, N)
    with torch.no_grad():
        output, features = method.network.forward_features(x)
    assert output.shape == (1, out, N, N, N)
    assert features.shape == (1, 2 * 12, 8, 8, 8)  # X_h' at dec1 (1/4): an 8^3 grid
    assert method.network.prior.prior.shape == (32, 2 * 12)  # O: tokens x channels
    for level, shape in (("hidden3", (1, 8 * 12, 2, 2, 2)), ("bottleneck", (1, 16 * 12, 1, 1, 1)),
                         ("enc3", (1, 4 * 12, 4, 4, 4)), ("enc2", (1, 2 * 12, 8, 8, 8)),
                         ("dec2", (1, 4 * 12, 4, 4, 4))):
        other = make(spec, prior_level=level)
        with torch.no_grad():
            assert other.network.forward_features(x)[1].shape == shape
    assert method.handles_missing and method.pretrains


@pytest.mark.parametrize("level", ["bottleneck", "hidden3", "enc3", "enc2", "dec2", "dec1"])
def test_without_o_every_level_decodes_exactly_like_monai_swinunetr(level):
    """encode / level / decode split SwinUNETR.forward without changing it."""
    method = make(SEG2, prior_level=level, use_prior=False)
    x = torch.randn(1, 2, N, N, N, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(method.network(x), method.network.backbone(x))


def test_method_contract():
    from xhbench.testing import check_method_contract

    check_method_contract(Ours)


def test_use_prior_false_removes_o():
    with_prior, without = make(SEG2), make(SEG2, use_prior=False)
    assert without.network.prior is None
    assert not any(k.startswith("prior.") for k in without.state_dict()["network"])
    prior_params = sum(p.numel() for p in with_prior.network.prior.parameters())
    assert with_prior.parameter_count() - without.parameter_count() == prior_params > 0


# --- pre-training terms ------------------------------------------------------------------

def test_each_pretraining_term_is_finite_and_nonzero(pretrained_terms):
    assert set(pretrained_terms) == {"contrastive", "equivariance", "invariance",
                                     "decomposition"}
    for name, value in pretrained_terms.items():
        assert torch.isfinite(value) and float(value) > 0, name


@pytest.mark.parametrize("off, kept", [
    ({"w_contrastive": 0, "w_equivariance": 0}, {"invariance", "decomposition"}),
    ({"w_invariance": 0, "w_decomposition": 0}, {"contrastive", "equivariance"}),
])
def test_switching_a_constraint_off_removes_its_term(off, kept):
    method = make(SEG2, **off)
    with torch.no_grad():
        total, logged = method.pretraining_loss(volumes(2, 2), torch.Generator().manual_seed(1))
    assert set(logged) == kept
    assert float(total) == pytest.approx(sum(logged.values()), rel=1e-5)


def test_rotation_helper_and_inverse():
    x = torch.zeros(1, 1, 4, 4, 3)
    x[0, 0, 3, 0, 1] = 1.0  # at (x=3, y=0)
    for k in range(4):
        rotated = L.rotate_z(x, k)
        assert torch.equal(L.rotate_z(rotated, -k), x)
        assert rotated[0, 0, :, :, 1].sum() == 1 and rotated[0, 0, :, :, (0, 2)].sum() == 0
    # 90 degrees about z moves the +x axis onto +y (torch.rot90 from x towards y)
    assert L.rotate_z(x, 1)[0, 0, 3, 3, 1] == 1 and L.rotate_z(x, 2)[0, 0, 0, 3, 1] == 1
    ks = torch.tensor([0, 1, 2, 3])
    batch = torch.randn(4, 2, 8, 8, 4)
    assert torch.equal(L.unrotate_batch(L.rotate_batch(batch, ks), ks), batch)


def test_rotation_targets_match_the_rotation_applied():
    method = make(SEG2)
    image = volumes(2, 2)["image"]
    views, ks, subjects = method.pretraining_views(image, torch.Generator().manual_seed(3))
    assert views.shape == (4, 2, N, N, N) and ks.shape == (4,)
    assert set(ks.tolist()) <= {0, 1, 2, 3} and subjects.tolist() == [0, 0, 1, 1]
    for j, k in enumerate(ks.tolist()):
        b, i = divmod(j, 2)
        expected = L.rotate_z(image[b, i].expand(2, N, N, N), k)  # modality i repeated (D.2.1)
        assert torch.equal(views[j], expected)
    # the classifier is trained against exactly these ks
    logits = torch.full((4, 4), -10.0)
    logits[torch.arange(4), ks] = 10.0
    assert float(L.rotation_loss(logits, ks)) < 1e-6


def test_invariance_loss_is_zero_for_equal_features():
    same = torch.randn(1, 2, 8, 2, 2, 2).expand(4, 2, 8, 2, 2, 2)
    for target in ("mean", "running"):
        assert float(L.invariance_loss(same, target)) == 0.0
        assert float(L.invariance_loss(torch.randn(3, 2, 8, 2, 2, 2), target)) > 0
    assert float(L.invariance_loss(torch.randn(1, 2, 8))) == 0.0
    views = torch.tensor([[0.0], [2.0]])
    assert float(L.invariance_loss(views, "mean")) == 1.0  # each view 1 from the mean
    assert float(L.invariance_loss(views, "last")) == 4.0  # the first view 2 from the last


def test_invariance_to_the_last_view_pulls_only_the_other_views():
    views = torch.tensor([[[1.0, 3.0]], [[0.0, 0.0]], [[2.0, 2.0]]], requires_grad=True)
    loss = L.invariance_loss(views, "last")
    loss.backward()
    # hand-computed: mean of (1-2)^2, (3-2)^2, (0-2)^2, (0-2)^2 over 4 elements
    assert float(loss.detach()) == pytest.approx(10 / 4)
    assert torch.equal(views.grad[-1], torch.zeros(1, 2))  # the teacher is not pulled
    torch.testing.assert_close(views.grad[:-1], (views[:-1] - views[-1:]).detach() * 2 / 4)


@pytest.mark.parametrize("target, expected", [("complete", "last"), ("mean", "mean")])
def test_finetuning_invariance_target_is_the_complete_view(monkeypatch, target, expected):
    """The drawn subset's X_h' is pulled towards the all-modality view's (detached);
    finetune_invariance_target=mean keeps Eq. 3's mean of the two views."""
    method = make(SEG2, finetune_invariance_target=target)
    seen = []
    original = L.invariance_loss

    def spy(views, target="mean", relative=False):
        seen.append((views.shape[0], target))
        return original(views, target, relative)

    monkeypatch.setattr(L, "invariance_loss", spy)
    batch = {**volumes(2, 2, seed=4), "available": torch.tensor([[False, True], [True, False]])}
    with torch.no_grad():
        method.finetune_losses(batch, torch.Generator())
    assert seen == [(2, expected)]


def test_nt_xent_equals_monai_contrastive_loss():
    from monai.losses import ContrastiveLoss

    a, b = torch.randn(6, 16), torch.randn(6, 16)
    assert torch.allclose(L.nt_xent(a, b, 0.5), ContrastiveLoss(temperature=0.5)(a, b),
                          atol=1e-5)
    # same-subject codes left out: identical codes of one group stop mattering
    groups = torch.tensor([0, 0, 1, 1, 2, 2])
    assert torch.isfinite(L.nt_xent(a, b, 0.5, groups))


def test_weighted_cross_entropy_weights():
    logits = torch.zeros(1, 2, 2, 2, 1)  # uniform softmax: -log p = log 2 everywhere
    label = torch.tensor([[[[[1], [0]], [[0], [0]]]]])  # 1 of 4 voxels is class 1
    # weights: class 0 -> 1 - 3/4, class 1 -> 1 - 1/4; mean over voxels
    expected = (3 * 0.25 + 1 * 0.75) / 4 * np.log(2)
    assert float(L.weighted_cross_entropy(logits, label)) == pytest.approx(expected)


def test_fill_missing_zero_and_repeat():
    image = torch.arange(3.0)[None, :, None, None, None].expand(1, 3, 2, 2, 2).clone()
    image[0, 2] = float("nan")
    only_b = torch.tensor([[False, True, False]])
    assert torch.equal(L.fill_missing(image, only_b, "zero")[0, :, 0, 0, 0],
                       torch.tensor([0.0, 1.0, 0.0]))
    assert torch.equal(L.fill_missing(image, only_b, "repeat")[0, :, 0, 0, 0],
                       torch.tensor([1.0, 1.0, 1.0]))  # D.2.1: the modality repeated
    two = torch.tensor([[True, True, False]])
    assert torch.equal(L.fill_missing(image, two, "repeat")[0, :, 0, 0, 0],
                       torch.tensor([0.0, 1.0, 0.5]))
    other = L.other_subset(torch.tensor([[True, False, False]]), torch.Generator())
    assert other.sum() == 1 and not other[0, 0]


# --- training ----------------------------------------------------------------------------

def _descends(method, loss_fn, batch, params, steps=2, lr=1e-3):
    optimizer = torch.optim.AdamW(params, lr=lr)
    values = []
    for _ in range(steps + 1):
        optimizer.zero_grad()
        loss, _ = loss_fn(batch, torch.Generator().manual_seed(7))  # same views every step
        values.append(float(loss.detach()))
        loss.backward()
        optimizer.step()
    return values


def test_pretraining_steps_lower_the_loss_on_a_fixed_batch():
    method = make(SEG2)
    method.network.train()
    values = _descends(method, method.pretraining_loss, volumes(2, 2),
                       list(method.network.parameters()), lr=3e-4)
    assert values[-1] < values[0], values


def test_finetuning_steps_lower_the_loss_on_a_fixed_batch():
    method = make(SEG2)
    batch = {**volumes(1, 2, seed=4), "available": torch.tensor([[False, True]])}
    _, logged = method.finetune_loss(batch, torch.Generator())
    assert set(logged) == {"task", "invariance"}  # drawn subset + the full view (Alg. 2)
    method.network.train()
    values = _descends(method, method.finetune_loss, batch, method.network.task_parameters())
    assert values[-1] < values[0], values


def test_pretrain_and_fit_loops_for_synthesis():
    method = make(SYN2, pretrain_steps=1, steps=1, batch_size=1)
    v = volumes(1, 2)
    messages = []
    history = method.pretrain([{"image": v["image"][0], "foreground": v["foreground"][0]}],
                              None, messages.append)
    assert history["steps"] == 1 and set(history["last"]) == {
        "loss", "contrastive", "equivariance", "invariance", "decomposition"}
    sample = {"image": v["image"][0], "target": v["target"][0],
              "foreground": v["foreground"][0], "available": np.array([True, False])}
    history = method.fit([sample], None, messages.append)
    assert set(history["last"]) == {"loss", "task", "invariance"}
    assert any(m.startswith("pretrain step 0") for m in messages)
    assert method.state_dict()["finetuned"]


def test_synthesis_task_head_starts_from_the_reconstruction_head():
    method = make(SYN_ONE)  # target t2 = input channel 1
    method.prepare_finetuning(lambda _: None)
    head = method.network.backbone.out.conv.conv
    recon = method.network.reconstruction_head.conv.conv
    assert torch.equal(head.weight, recon.weight[1:2]) and torch.equal(head.bias, recon.bias[1:2])


def test_finetune_invariance_switch_keeps_the_second_view():
    method = make(SEG2, finetune_w_invariance=0.0)
    assert method.second_view(torch.tensor([[True, False]]), torch.Generator()).tolist() == \
        [[True, True]]
    batch = {**volumes(1, 2, seed=4), "available": torch.tensor([[False, True]])}
    with torch.no_grad():
        total, logged = method.finetune_loss(batch, torch.Generator())
    assert set(logged) == {"task", "invariance"} and logged["invariance"] > 0
    assert float(total) == pytest.approx(logged["task"])  # only the term goes
    synth = make(SYN2)
    second = synth.second_view(torch.tensor([[True, False]]), torch.Generator())
    assert second.tolist() == [[False, True]]  # synthesis: another single source


# --- ablations (Tables 4 and 7): each switch changes exactly its part -----------------

def _parts(method) -> dict[str, object]:
    """What an ablation can change: the pre-training terms computed (none when pre-training
    is skipped), the predicting model's tensors, the fine-tuning views and the terms that
    enter the fine-tuning loss."""
    with torch.no_grad():
        pretraining = (frozenset(method.pretraining_losses(volumes(2, 2),
                                                           torch.Generator().manual_seed(1)))
                       if method.config.pretrain_steps > 0 else frozenset())
        batch = {**volumes(2, 2, seed=4), "available": torch.tensor([[False, True],
                                                                     [True, False]])}
        total, logged = method.finetune_loss(batch, torch.Generator().manual_seed(2))
    model = method.plain if method.plain is not None else method.network
    heads = ("contrastive_head.", "rotation_head.", "reconstruction_head.")
    in_total = {"task"} | ({"invariance"} if float(total) > logged["task"] + 1e-9 else set())
    return {"pretraining": pretraining,
            "model": frozenset(k for k in model.state_dict() if not k.startswith(heads)),
            "views": method.second_view(batch["available"], torch.Generator()).tolist(),
            "fine-tuning loss": frozenset(in_total)}


ABLATIONS = [  # (switch, the part it changes, what variant() says)
    ({"use_prior": False}, "model", "w/o O"),
    ({"w_contrastive": 0}, "pretraining", "D+E+I + O"),
    ({"w_decomposition": 0}, "pretraining", "C+E+I + O"),
    ({"w_equivariance": 0}, "pretraining", "C+D+I + O"),
    ({"w_invariance": 0}, "pretraining", "C+D+E + O"),
    ({"pretrain_steps": 0}, "pretraining", "no pre-training"),
    ({"mode": "encoder_only"}, "model", "encoder_only"),
    ({"finetune_w_invariance": 0}, "fine-tuning loss", "fine-tuning w/o L_inv"),
]


@pytest.fixture(scope="module")
def default_parts():
    return _parts(make(SEG2))


@pytest.mark.parametrize("switch, part, says", ABLATIONS)
def test_each_ablation_switch_changes_exactly_its_part(default_parts, switch, part, says):
    method = make(SEG2, **switch)
    parts = _parts(method)
    assert {name for name in parts if parts[name] != default_parts[name]} == {part}
    assert says in method.variant() and method.variant() != make(SEG2).variant()


def test_variant_names_the_default_configuration():
    assert make(SEG2).variant() == "C+D+E+I + O@dec1"
    assert make(SEG2, prior_level="bottleneck", w_equivariance=0).variant() == \
        "C+D+I + O@bottleneck"


# --- inference, state, modes ---------------------------------------------------------

def test_predict_ignores_missing_channels_and_round_trips(tmp_path):
    method = make(SEG2)
    image = volumes(1, 2, seed=5)["image"][0].numpy()[:, :30, :28, :32]  # odd, non-/32 size
    first = method.predict(image, (True, False))
    assert first.shape == image.shape[1:] and first.dtype == np.int64
    garbage = image.copy()
    garbage[1] = 1e6
    garbage[1, 0, 0, 0] = np.nan
    assert np.array_equal(method.predict(garbage, (True, False)), first)

    path = tmp_path / "state.pt"
    torch.save(method.state_dict(), path)
    other = make(SEG2)
    other.load_state_dict(torch.load(path, weights_only=False))
    assert np.array_equal(other.predict(image, (True, False)), first)


def test_synthesis_predicts_all_targets_from_one_source_ignoring_the_rest():
    method = make(SYN_ONE)
    image = volumes(1, 3, seed=6)["image"][0].numpy()
    out = method.predict(image, (True, False, False))
    assert out.shape == (1, N, N, N) and np.isfinite(out).all()
    garbage = image.copy()
    garbage[1:] = -1e6
    np.testing.assert_array_equal(method.predict(garbage, (True, False, False)), out)


def test_encoder_only_mode_loads_the_pretrained_encoder_into_a_plain_swinunetr():
    from monai.networks.nets import SwinUNETR

    method = make(SEG2, mode="encoder_only", steps=0, batch_size=1)
    assert isinstance(method.plain, SwinUNETR)
    with torch.no_grad():
        for p in method.network.backbone.swinViT.parameters():
            p.add_(0.5)  # stand-in for pre-training
    data = [{"image": volumes(1, 2)["image"][0], "label": volumes(1, 2)["label"][0],
             "foreground": volumes(1, 2)["foreground"][0],
             "available": np.array([True, False])}]
    messages = []
    method.fit(data, None, messages.append)  # 0 steps: only the encoder copy
    assert any("pre-trained encoder tensors" in m for m in messages)
    for (name, mine), theirs in zip(method.plain.swinViT.state_dict().items(),
                                    method.network.backbone.swinViT.state_dict().values()):
        assert torch.equal(mine, theirs), name
    state = method.state_dict()
    assert "plain" in state and state["finetuned"]
    assert method.parameter_count() == sum(p.numel() for p in method.plain.parameters())


# --- configuration ---------------------------------------------------------------------

def test_every_option_is_pretraining_or_finetuning():
    names = {f.name for f in dataclasses.fields(OursConfig)}
    assert set(PRETRAINING_FIELDS) | set(FINETUNING_FIELDS) == names
    assert not set(PRETRAINING_FIELDS) & set(FINETUNING_FIELDS)


def test_pretraining_key_ignores_finetuning_options():
    def key(**overrides):  # pretraining_key reads only config and spec: no network needed
        config = cfg.resolve("method ours", OursConfig, Ours.profiles, "smoke", overrides)
        return Ours.pretraining_key(types.SimpleNamespace(config=config, spec=SEG2))

    base = key()
    for change in ({"mode": "encoder_only"}, {"steps": 7}, {"lr": 1e-2},
                   {"finetune_w_invariance": 0.0}, {"missing_fill": "zero"}):
        assert key(**change) == base, change
    for change in ({"use_prior": False}, {"w_invariance": 0.0}, {"pretrain_steps": 3},
                   {"roi": (64, 64, 64)}, {"temperature": 0.1}):
        assert key(**change) != base, change


def test_paper_profile_matches_the_paper():
    paper = cfg.resolve("method ours", OursConfig, Ours.profiles, "paper")
    assert paper.roi == (96, 96, 96) and paper.lr == 2e-4 and paper.pretrain_lr == 2e-4
    assert paper.feature_size == 48 and paper.norm == "instance"
    # the paper's placement and form of the prior: O on z, X_h' = conv(z (+) z'), Eq. 3
    assert (paper.prior_level, paper.fuse_residual, paper.invariance_relative) == (
        "bottleneck", False, False)
    assert paper.steps * paper.batch_size == 1000 * 199  # 1000 epochs of BraTS18 train
    assert paper.pretrain_steps * paper.pretrain_batch_size == 1000 * 1251


@pytest.mark.parametrize("overrides, message", [
    ({"roi": (32, 64, 32)}, "square x-y roi"),
    ({"rotate": False}, "needs rotate=true"),
    ({"roi": (48, 48, 48)}, "divisible by 32"),
    ({"prior_heads": 7}, "prior_heads"),
    ({"pretrain_batch_size": 1}, "pretrain_batch_size >= 2"),  # other_subjects negatives
    ({"w_contrastive": 0, "w_equivariance": 0, "w_invariance": 0, "w_decomposition": 0},
     "every pre-training weight is 0"),
])
def test_bad_configs_are_rejected(overrides, message):
    with pytest.raises(ConfigError, match=message):
        make(SEG2, **overrides)


# --- end to end ------------------------------------------------------------------------

@pytest.mark.slow
def test_cli_smoke_run_on_brats18_missing(tmp_path):
    from click.testing import CliRunner

    from xhbench.cli import cli
    from xhbench.results import find_runs

    args = ["run", "--task", "brats18_missing", "--method", "ours", "--profile", "smoke",
            "--set", "task.phantom_train=2", "--set", "task.phantom_test=1",
            "--out", str(tmp_path / "results")]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    finished, _ = find_runs(tmp_path / "results", "brats18_missing")
    run = finished[0]
    assert len(run.cases()) == 1 * 15 * 4
    training = run.summary["training"]
    assert "saved" in training["pretraining"]
    assert set(training["pretraining"]["last"]) == {"loss", "contrastive", "equivariance",
                                                    "invariance", "decomposition"}
    # a second run with other fine-tuning options reuses the pre-trained state
    again = CliRunner().invoke(cli, args + ["--set", "method.finetune_w_invariance=0.5"],
                               catch_exceptions=False)
    assert again.exit_code == 0, again.output
    finished, _ = find_runs(tmp_path / "results", "brats18_missing")
    cached = [r for r in finished if "cached" in r.summary["training"]["pretraining"]]
    assert len(cached) == 1

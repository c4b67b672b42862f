"""tinynet: a segmentation method on the training engine, as a plugin (docs/architecture.md)."""

from dataclasses import dataclass

import torch

import xhbench
from xhbench.methods.base import Method
from xhbench.training.batches import StepBatches
from xhbench.training.engine import Engine, Stage


@dataclass
class TinyNetConfig:
    roi: tuple[int, int, int] = (16, 16, 16)  # the training crop the task cuts
    batch_size: int = 2
    steps: int = 20
    lr: float = 1e-2
    checkpoint_every: int = 10  # steps between resumable training states


class TinyNet(Method):
    name = "tinynet"
    Config = TinyNetConfig
    profiles = {"smoke": {"steps": 2}, "default": {}, "paper": {}}

    def __init__(self, config, spec, device):
        super().__init__(config, spec, device)
        self.network = torch.nn.Conv3d(len(spec.in_channels), len(spec.out_channels), 3,
                                       padding=1).to(device)

    def training_step(self, batch, step):  # the loss terms of one batch
        logits = self.network(batch["image"].to(self.device))
        label = batch["label"][:, 0].long().to(self.device)
        return {"ce": torch.nn.functional.cross_entropy(logits, label)}

    def fit(self, train_data, workdir, log):
        cfg = self.config
        engine = Engine(self.name, self.device, workdir, log, budget=self.budget,
                        checkpoint_every=cfg.checkpoint_every)
        engine.resume(network=self.network)
        adam = torch.optim.Adam(self.network.parameters(), lr=cfg.lr)
        records = engine.run(Stage("train", cfg.steps, StepBatches(train_data, cfg.batch_size),
                                   self.training_step, {"adam": adam}, model=self.network))
        return {"steps": cfg.steps, "last_loss": records[-1]["loss"] if records else None}

    @torch.no_grad()
    def predict(self, image, available):
        self.network.eval()
        logits = self.network(torch.as_tensor(image[None], device=self.device))
        return logits.argmax(dim=1)[0].cpu().numpy()

    def state_dict(self):
        return {"network": self.network.state_dict()}

    def load_state_dict(self, state):
        self.network.load_state_dict(state["network"])


@xhbench.hookimpl
def xhbench_register_methods(register):
    register("tinynet", "tinynet:TinyNet", kinds=("segmentation",),
             description="one 3x3x3 convolution, cross-entropy (the guide's example)")

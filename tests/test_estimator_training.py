"""The trainer's pieces: its Adam is torch's fused Adam, its code lengths are cross-entropies."""
import math
import subprocess
import sys

import torch
import torch.nn.functional as F

from estimators.models import GPT, GPTConfig
from estimators.training import make_optimizer, set_lr, token_bits


def _train(optimizer_for) -> torch.Tensor:
    torch.manual_seed(0)
    model = GPT(GPTConfig(256, 64, 2, 32))
    opt = optimizer_for(model)
    base = [group["lr"] for group in opt.param_groups]
    x = torch.randint(0, 256, (4, 33), generator=torch.Generator().manual_seed(1))
    for step in range(12):  # through the warm-up: the learning rate changes every step
        set_lr(opt, base, step, 8)
        opt.zero_grad()
        token_bits(model(x[:, :-1]), x[:, 1:]).mean().backward()
        opt.step()
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def test_adam_makes_torchs_fused_update_bit_for_bit():
    ours = _train(lambda model: make_optimizer(model, 3e-2, 2e-3))
    torchs = _train(lambda model: torch.optim.Adam(model.param_groups(3e-2, 2e-3), betas=(0.9, 0.95),
                                                   eps=1e-10, fused=True))
    assert torch.equal(ours, torchs)
    assert not torch.equal(ours, _train(lambda model: make_optimizer(model, 3e-2, 1e-3)))


def test_training_does_not_import_torch_dynamo():
    """torch.optim imports torch._dynamo on first use: about 2 s of every fresh worker's start."""
    code = ("import sys\n"
            "from estimators import prequential, synthetic\n"
            "from estimators.data import split\n"
            "from estimators.models import GPTConfig\n"
            "import numpy as np, torch\n"
            "tokens = np.frombuffer(synthetic.random_bytes(4096, seed=0), dtype=np.uint8)\n"
            "cfg = prequential.RunConfig(GPTConfig(256, 32, 1, 32), 0, 3e-2, 2e-3, 4, 10**9, 4096)\n"
            "prequential.run(split(tokens, 32, 0, 512), cfg, torch.device('cpu'))\n"
            "print('torch._dynamo' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_token_bits_are_cross_entropy_in_bits():
    logits = torch.randn(3, 5, 7, generator=torch.Generator().manual_seed(2))
    targets = torch.randint(0, 7, (3, 5), generator=torch.Generator().manual_seed(3))
    bits = token_bits(logits, targets)
    assert bits.shape == (3, 5)
    expected = -F.log_softmax(logits, -1).gather(-1, targets[..., None]).squeeze(-1) / math.log(2)
    assert torch.allclose(bits, expected, atol=1e-6)
    assert torch.allclose(token_bits(torch.zeros(1, 2, 256), torch.tensor([[0, 255]])),
                          torch.full((1, 2), 8.0))  # uniform over bytes: 8 bits each

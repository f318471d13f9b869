#!/usr/bin/env python3
"""The PyTorch yardstick of `ntc bench train` (issue #12): one training step of the same model, the
same batch and the same loss in PyTorch fp32, timed the same way (median of --reps steps after a
warm-up), printed as one JSON line.

Not a dependency of ntc: it runs only where PyTorch is installed (Debian: python3-torch, 1.13 with
oneDNN; jemalloc via LD_PRELOAD as bench/pytorch_vs_ntc.sh does). The models mirror
data/configs/{light,jpegl,ntc_two_layer}.cfg layer for layer (nn/transforms.cc): ELIC or CNN
analysis with GDN1, the mean-scale hyperprior, the JPEG-like or two-layer synthesis, the factorized
prior (filters 3,3), uniform-noise quantisation, loss = bpp + λ·255²·MSE, global-norm clipping at 1
and Adam. Initialisation does not matter for the timing and is PyTorch's default.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    print("pytorch_train.py: PyTorch is not installed (Debian: apt-get install python3-torch)", file=sys.stderr)
    sys.exit(2)


def conv(cin, cout, k, s=1):  # TF "same" size: out = in / s
    return nn.Conv2d(cin, cout, k, s, padding=k // 2)


def deconv(cin, cout, k, s):  # out = in · s
    p = (k - s + 1) // 2
    return nn.ConvTranspose2d(cin, cout, k, s, padding=p, output_padding=s + 2 * p - k)


class GDN1(nn.Module):
    """y = x / (β + γ|x|) (inverse: x · (β + γ|x|)) with the non-negative reparametrisation."""

    def __init__(self, c, inverse=False):
        super().__init__()
        self.inverse = inverse
        self.beta = nn.Parameter(torch.ones(c).sqrt())
        self.gamma = nn.Parameter((0.1 * torch.eye(c)).sqrt())

    def forward(self, x):
        beta = self.beta.clamp_min(1e-3) ** 2
        gamma = self.gamma.clamp_min(0) ** 2
        norm = F.conv2d(x.abs(), gamma[:, :, None, None], beta)
        return x * norm if self.inverse else x / norm


class ResidualBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c1, self.c2, self.c3 = conv(c, c // 2, 1), conv(c // 2, c // 2, 3), conv(c // 2, c, 1)

    def forward(self, x):
        return x + self.c3(F.relu(self.c2(F.relu(self.c1(x)))))


class SimpleAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.trunk = nn.Sequential(*[ResidualBlock(c) for _ in range(3)])
        self.branch = nn.Sequential(*[ResidualBlock(c) for _ in range(3)])
        self.gate = conv(c, c, 1)

    def forward(self, x):
        return x + self.trunk(x) * torch.sigmoid(self.gate(self.branch(x)))


def elic_analysis(M, ch=192):
    res = lambda c: nn.Sequential(*[ResidualBlock(c) for _ in range(3)])
    return nn.Sequential(conv(3, ch, 5, 2), res(ch), conv(ch, ch, 5, 2), res(ch), SimpleAttention(ch),
                         conv(ch, ch, 5, 2), res(ch), conv(ch, M, 5, 2), SimpleAttention(M))


def cnn_gdn_analysis(M, B):
    return nn.Sequential(conv(3, B, 5, 2), GDN1(B), conv(B, B, 5, 2), GDN1(B), conv(B, B, 5, 2), GDN1(B),
                         conv(B, M, 5, 2))


class EntropyBottleneck(nn.Module):
    """The factorized prior of Ballé et al. 2018, filters (3, 3), as in codec/entropy_bottleneck.cc."""

    def __init__(self, C, filters=(3, 3), init_scale=10.0):
        super().__init__()
        f = (1,) + tuple(filters) + (1,)
        scale = init_scale ** (1 / (len(filters) + 1))
        self.matrices, self.biases, self.factors = nn.ParameterList(), nn.ParameterList(), nn.ParameterList()
        for i in range(len(filters) + 1):
            init = math.log(math.expm1(1 / scale / f[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((C, f[i + 1], f[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(C, f[i + 1], 1) - 0.5))
            if i < len(filters):
                self.factors.append(nn.Parameter(torch.zeros(C, f[i + 1], 1)))

    def logits(self, x):  # x: C × 1 × n
        for i, m in enumerate(self.matrices):
            x = torch.matmul(F.softplus(m), x) + self.biases[i]
            if i < len(self.factors):
                x = x + torch.tanh(self.factors[i]) * torch.tanh(x)
        return x

    def likelihood(self, z):
        N, C, H, W = z.shape
        v = z.permute(1, 0, 2, 3).reshape(C, 1, -1)
        lower, upper = self.logits(v - 0.5), self.logits(v + 0.5)
        s = -torch.sign(lower + upper).detach()
        lik = (torch.sigmoid(s * upper) - torch.sigmoid(s * lower)).abs()
        return lik.clamp_min(1e-9)


def gaussian_likelihood(y, scales, means):
    a = (y - means).abs()
    s = scales.clamp_min(0.11)
    c = lambda v: 0.5 * torch.erfc(-v / math.sqrt(2))
    return (c((0.5 - a) / s) - c((-0.5 - a) / s)).clamp_min(1e-9)


class Model(nn.Module):
    def __init__(self, config):
        super().__init__()
        if config == "jpegl":
            M, Z = 320, 320
            self.g_a = elic_analysis(M)
            self.g_s = deconv(M, 3, 18, 16)
        elif config == "light":
            M, Z = 192, 128
            self.g_a = cnn_gdn_analysis(M, 128)
            self.g_s = deconv(M, 3, 18, 16)
        elif config == "ntc_two_layer":
            M, Z = 192, 64
            self.g_a = cnn_gdn_analysis(M, 128)
            self.g_s = nn.Sequential(deconv(M, 24, 13, 8), GDN1(24, inverse=True), deconv(24, 3, 5, 2))
        else:
            raise SystemExit(f"pytorch_train.py: unknown config '{config}' (light, jpegl, ntc_two_layer)")
        hs = (96, 176) if config == "ntc_two_layer" else (M, M * 3 // 2)
        self.M = M
        self.h_a = nn.Sequential(conv(M, Z, 3), nn.ReLU(), conv(Z, Z, 5, 2), nn.ReLU(), conv(Z, Z, 5, 2))
        self.h_s = nn.Sequential(deconv(Z, hs[0], 5, 2), nn.ReLU(), deconv(hs[0], hs[1], 5, 2), nn.ReLU(),
                                 deconv(hs[1], 2 * M, 3, 1))
        self.eb = EntropyBottleneck(Z)

    def loss(self, img, lam):
        x = img / 255 - 0.5
        y = self.g_a(x)
        y_t = y + torch.rand_like(y) - 0.5
        z = self.h_a(y)
        z_t = z + torch.rand_like(z) - 0.5
        bits_z = -torch.log2(self.eb.likelihood(z_t)).sum()
        hs = self.h_s(z_t)
        mu, r = hs[:, :self.M], hs[:, self.M:]
        scales = torch.exp(r.exp().clamp(0, 63) * (math.log(256 / 0.11) / 63) + math.log(0.11))  # tf_index
        bits_y = -torch.log2(gaussian_likelihood(y_t, scales, mu)).sum()
        x_hat = self.g_s(y_t)
        mse = (x_hat - x).square().mean() * 255 ** 2
        return (bits_y + bits_z) / (img.shape[0] * img.shape[2] * img.shape[3]) + lam * mse


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="jpegl")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = Model(a.config)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    img = torch.rand(a.batch, 3, a.crop, a.crop) * 255

    def step():
        loss = model.loss(img, 0.01)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    step()  # warm-up (oneDNN JIT, allocator)
    times = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"bench": "pytorch_train", "config": a.config, "batch": a.batch, "crop": a.crop,
                      "threads": a.threads, "torch": torch.__version__, "mkldnn": torch.backends.mkldnn.is_available(),
                      "jemalloc": "jemalloc" in os.environ.get("LD_PRELOAD", ""),
                      "parameters": sum(p.numel() for p in model.parameters()),
                      "step_s": statistics.median(times), "min_step_s": min(times), "reps": a.reps}))


if __name__ == "__main__":
    main()

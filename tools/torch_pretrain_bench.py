#!/usr/bin/python3
"""PyTorch peer of `gradfeat pretrain`: throughput of one from-scratch training
step (forward with BatchNorm in training mode, softmax cross-entropy, backward,
SGD momentum step) of the architectures gradfeat trains, on random data.

The modules use the same attribute names as gradfeat's tensors (PyTorch
state_dict keys), so `--print-keys` lists exactly the names and shapes a
gradfeat checkpoint of that architecture holds, and such a checkpoint loads
into these modules.

  small28    conv1 3x3 C->32 +bn1+relu+maxpool2, conv2 32->64 +bn2+relu+maxpool2,
             conv3 64->128 +bn3+relu, global avg pool, fc 128->K
  bigan      conv1 3x3 C->64 (bias) + lrelu(0.2); conv2..4 4x4 s2 (128, 256, 512)
             + bn + lrelu; conv5 3x3 512->512 + bn5 + lrelu; gap; fc 512->K
  resnet18c  torchvision ResNet-18 with a 3x3 stride-1 stem and no max pool

Init (torchvision ResNet style): convs kaiming_normal_(fan_out) with the ReLU gain
(bigan: leaky-ReLU gain sqrt(2/(1+0.2^2))), BN gamma 1 beta 0, fc PyTorch Linear
default; bigan's conv1 bias PyTorch's Conv2d default (uniform +-1/sqrt(fan_in)).
Defaults lr 0.05, momentum 0.9, weight decay 5e-4 (on every parameter) are
gradfeat pretrain's.

--task rotation (as gradfeat): each of the --batch images enters the step four
times, turned by r = 0..3 quarter turns counter-clockwise (torch.rot90(x, r,
dims=(1, 2)) per CHW image, gf_image_rotate90's convention), sample 4i+r with
label r: a step is 4 x batch samples; images/s counts the batch's source images
(as gradfeat's img/s does) and samples/s the 4 x batch rotated samples.
Rotating is part of the timed step.

usage: /usr/bin/python3 tools/torch_pretrain_bench.py --arch small28 [--batch 128]
       [--size 28] [--channels 1] [--classes 10] [--task labels|rotation]
       [--threads 2] [--steps 20] [--warmup 3] [--lr 0.1] [--momentum 0.9]
       [--weight-decay 5e-4] [--device cpu|cuda] [--seed 0] [--json] [--print-keys]
Prints images/s (and with --json one JSON line). Works with torch 1.13 and 2.x.

Cross-check of a model gradfeat wrote: --eval-model FILE.safetensors --eval-idx DIR
loads every tensor of the file into the module by name (strict: the same key set
apart from num_batches_tracked, the same shapes) and reports the accuracy of the
BN-eval-mode network on DIR's t10k-* IDX files (MNIST / Fashion-MNIST, gzip or
plain) with the file's own preprocessing (pixel/255, mean, std)."""
import argparse
import gzip
import json
import os
import struct
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ARCHS = ("small28", "bigan", "resnet18c")
LRELU = 0.2


def kaiming_fan_out(w, gain):
    fan_out = w.shape[0] * w.shape[2] * w.shape[3]
    with torch.no_grad():
        w.normal_(0.0, gain / math.sqrt(fan_out))


class Small28(nn.Module):
    def __init__(self, c, k):
        super().__init__()
        self.conv1 = nn.Conv2d(c, 32, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.conv3 = nn.Conv2d(64, 128, 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(128)
        self.fc = nn.Linear(128, k)
        self.gain = math.sqrt(2.0)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2, 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2, 2)
        x = F.relu(self.bn3(self.conv3(x)))
        return self.fc(x.mean((2, 3)))


class BiGAN(nn.Module):
    def __init__(self, c, k):
        super().__init__()
        self.conv1 = nn.Conv2d(c, 64, 3, 1, 1, bias=True)
        self.conv2 = nn.Conv2d(64, 128, 4, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(128)
        self.conv3 = nn.Conv2d(128, 256, 4, 2, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(256)
        self.conv4 = nn.Conv2d(256, 512, 4, 2, 1, bias=False)
        self.bn4 = nn.BatchNorm2d(512)
        self.conv5 = nn.Conv2d(512, 512, 3, 1, 1, bias=False)
        self.bn5 = nn.BatchNorm2d(512)
        self.fc = nn.Linear(512, k)
        self.gain = math.sqrt(2.0 / (1.0 + LRELU * LRELU))

    def forward(self, x):
        x = F.leaky_relu(self.conv1(x), LRELU)
        x = F.leaky_relu(self.bn2(self.conv2(x)), LRELU)
        x = F.leaky_relu(self.bn3(self.conv3(x)), LRELU)
        x = F.leaky_relu(self.bn4(self.conv4(x)), LRELU)
        x = F.leaky_relu(self.bn5(self.conv5(x)), LRELU)
        return self.fc(x.mean((2, 3)))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + (self.downsample(x) if self.downsample is not None else x))


class ResNet18C(nn.Module):
    def __init__(self, c, k):
        super().__init__()
        self.conv1 = nn.Conv2d(c, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for i, (w, s) in enumerate(zip((64, 128, 256, 512), (1, 2, 2, 2))):
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(cin, w, s), BasicBlock(w, w, 1)))
            cin = w
        self.fc = nn.Linear(512, k)
        self.gain = math.sqrt(2.0)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(x.mean((2, 3)))


def build(arch, c, k):
    net = {"small28": Small28, "bigan": BiGAN, "resnet18c": ResNet18C}[arch](c, k)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            kaiming_fan_out(m.weight, net.gain)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return net   # nn.Linear keeps its default init: uniform(-1/sqrt(in), 1/sqrt(in))


def read_idx(path):
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8).reshape(dims)


def eval_model(a):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import gfmodel
    graph, pre, classes, tensors = gfmodel.read(a.eval_model)
    c, h, w = graph["input"]["shape"]
    k = tensors["fc.weight"].shape[0]
    net = build(a.arch, c, k)
    want = {n: t for n, t in net.state_dict().items() if not n.endswith("num_batches_tracked")}
    have = {n for n in tensors if not n.endswith("num_batches_tracked")}
    if set(want) != have:
        print(f"torch_pretrain_bench: {a.eval_model}: tensor names differ from {a.arch}'s state_dict: "
              f"missing {sorted(set(want) - have)}, extra {sorted(have - set(want))}", file=sys.stderr)
        return 1
    sd = {}
    for n, t in want.items():
        if tuple(tensors[n].shape) != tuple(t.shape):
            print(f"torch_pretrain_bench: {n}: shape {list(tensors[n].shape)} in the file, {list(t.shape)} in "
                  f"{a.arch}", file=sys.stderr)
            return 1
        sd[n] = torch.from_numpy(tensors[n].copy())
    net.load_state_dict(sd, strict=False)
    net.eval()
    def find(kind):
        for ext in ("", ".gz"):
            q = os.path.join(a.eval_idx, f"t10k-{kind}{ext}")
            if os.path.exists(q):
                return q
        raise SystemExit(f"torch_pretrain_bench: no t10k-{kind}[.gz] in {a.eval_idx}")
    x = read_idx(find("images-idx3-ubyte")).float()
    y = read_idx(find("labels-idx1-ubyte")).long()
    if x.shape[1:] != (h, w) or c != 1:
        print(f"torch_pretrain_bench: the model wants {c}x{h}x{w}, the images are {list(x.shape[1:])}",
              file=sys.stderr)
        return 1
    mean = torch.tensor(pre.get("mean", [0.0]), dtype=torch.float32)[0]
    std = torch.tensor(pre.get("std", [1.0]), dtype=torch.float32)[0]
    x = ((x / 255.0 - mean) / std).unsqueeze(1)
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), 1000):
            correct += int((net(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum())
    print(f"{a.eval_model}: {a.arch}, {len(tensors)} tensors loaded by name; test accuracy in PyTorch "
          f"{100.0 * correct / len(y):.2f}% ({correct}/{len(y)})")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", choices=ARCHS, required=True)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--size", type=int, default=28, help="square input side (default 28)")
    p.add_argument("--channels", type=int, default=1, choices=(1, 3))
    p.add_argument("--classes", type=int, default=10, help="--task labels: K (default 10)")
    p.add_argument("--task", choices=("labels", "rotation"), default="labels")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="also print one JSON line")
    p.add_argument("--print-keys", action="store_true", help="list state_dict names and shapes, then exit")
    p.add_argument("--eval-model", metavar="FILE", help="load a gradfeat model file of --arch by tensor name ...")
    p.add_argument("--eval-idx", metavar="DIR", help="... and report its accuracy on DIR/t10k-* (IDX)")
    a = p.parse_args()
    if a.eval_model:
        if not a.eval_idx:
            p.error("--eval-model needs --eval-idx DIR")
        return eval_model(a)
    if a.batch < 1 or a.steps < 1 or a.warmup < 0 or a.size < 4:
        p.error("need --batch >= 1, --steps >= 1, --warmup >= 0, --size >= 4")
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    torch.backends.cudnn.benchmark = True
    if hasattr(torch.backends.cuda, "matmul"):
        torch.backends.cuda.matmul.allow_tf32 = False   # fp32 like gradfeat
    torch.backends.cudnn.allow_tf32 = False
    k = 4 if a.task == "rotation" else a.classes
    net = build(a.arch, a.channels, k)
    if a.print_keys:
        for name, t in net.state_dict().items():
            print(name, list(t.shape))
        return 0
    net = net.to(dev).train()
    opt = torch.optim.SGD(net.parameters(), lr=a.lr, momentum=a.momentum, weight_decay=a.weight_decay)
    g = torch.Generator().manual_seed(a.seed + 1)
    x = torch.rand(a.batch, a.channels, a.size, a.size, generator=g).to(dev)
    y = torch.randint(0, k, (a.batch,), generator=g).to(dev)
    n = a.batch
    if a.task == "rotation":
        n = 4 * a.batch
        y = (torch.arange(n) % 4).to(dev)

    def step():
        xb = x
        if a.task == "rotation":
            xb = torch.stack([torch.rot90(x, r, dims=(2, 3)) for r in range(4)], 1).reshape(n, *x.shape[1:])
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(xb), y)
        loss.backward()
        opt.step()
        return loss

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(a.warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    sync()
    dt = (time.perf_counter() - t0) / a.steps
    ips = a.batch / dt          # source images (rotation: an image and its three turns count once)
    sps = n / dt                # samples through the network
    lv = float(loss)
    if not math.isfinite(lv):
        print(f"torch_pretrain_bench: loss became {lv}", file=sys.stderr)
        return 1
    print(f"torch {torch.__version__} {a.device} threads={torch.get_num_threads()} arch={a.arch} task={a.task} "
          f"batch={a.batch}{'x4' if n != a.batch else ''} input={a.channels}x{a.size}x{a.size} classes={k}: {dt * 1e3:.1f} ms/step, "
          f"{ips:.1f} images/s{f' ({sps:.1f} rotated samples/s)' if n != a.batch else ''} (loss {lv:.4f})")
    if a.json:
        print(json.dumps({"peer": "torch", "torch": torch.__version__, "device": a.device,
                          "threads": torch.get_num_threads(), "arch": a.arch, "task": a.task, "batch": a.batch, "samples_per_step": n,
                          "channels": a.channels, "size": a.size, "classes": k, "steps": a.steps,
                          "warmup": a.warmup, "ms_per_step": round(dt * 1e3, 3), "images_per_s": round(ips, 2),
                          "samples_per_s": round(sps, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

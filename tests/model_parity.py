#!/usr/bin/python3
"""Test helper for tests/test_model_parity_*.c: converts a model with the tools/ converters and writes
the inputs and the REFERENCE outputs computed by the source framework (PyTorch), never by gradfeat.

usage: model_parity.py CASE OUTDIR [N]
  CASE: resnet18 | mobilenet_v2   torchvision, seeded random weights, BN with non-trivial running stats
        onnx_resnet18             the same resnet18 exported by torch.onnx -> tools/convert_onnx.py
        emotion                   models/emotion/fetch.sh (npm, cached) -> tools/convert_tfjs.py; inputs
                                  skimage lfw_subset[1], [3] resized 25->64 with the TF1 legacy bilinear
                                  rule; references are the TF.js golden values held by the C test
Writes OUTDIR/model.safetensors, OUTDIR/x.f32 (N x C x H x W), OUTDIR/ref.f32 (N x K, absent for
emotion) and OUTDIR/meta.txt ("N C H W K").
"""
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))


def seeded_torchvision(arch, num_classes=10):
    import torch
    import convert_torchvision as ct
    torch.manual_seed(1234)
    m = ct.build(arch, num_classes)
    g = torch.Generator().manual_seed(99)
    for mod in m.modules():  # non-trivial BN statistics so that folding matters
        if isinstance(mod, torch.nn.BatchNorm2d):
            c = mod.num_features
            mod.running_mean.copy_(torch.rand(c, generator=g) - 0.5)
            mod.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
            mod.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            mod.bias.data.copy_(torch.rand(c, generator=g) * 0.4 - 0.2)
    return m.eval()


def main():
    case, out = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "model.safetensors")
    if case == "emotion":
        import gfmodel
        env = dict(os.environ)
        subprocess.run(["bash", os.path.join(ROOT, "models/emotion/fetch.sh"), path], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        lfw = np.load(subprocess.run(["bash", "-c", "dpkg -L python3-skimage | grep lfw_subset.npy | head -1"],
                                     capture_output=True, text=True, check=True).stdout.strip())
        x = np.stack([(gfmodel.resize_bilinear_tf_legacy(lfw[i], 64, 64) - 0.5) * 2 for i in (1, 3)])[:, None]
        x.astype("<f4").tofile(os.path.join(out, "x.f32"))
        open(os.path.join(out, "meta.txt"), "w").write("2 1 64 64 7\n")
        return
    import torch
    torch.set_num_threads(2)
    arch = "resnet18" if case == "onnx_resnet18" else case
    m = seeded_torchvision(arch)
    x = torch.randn(n, 3, 224, 224, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        ref = m(x).numpy()
    if case == "onnx_resnet18":
        import onnx
        import convert_onnx
        import gfmodel
        op = os.path.join(out, "model.onnx")
        torch.onnx.export(m, x[:1], op, opset_version=13, input_names=["input"], output_names=["logits"])
        g = convert_onnx.convert(onnx.load(op))
        gfmodel.write(path, g, {"input_size": [224, 224], "channels": 3, "color_order": "RGB"}, [])
    else:
        import convert_torchvision as ct
        import gfmodel
        g = ct.convert_module(m, 224)
        gfmodel.write(path, g, dict(ct.IMAGENET_PRE, input_size=[224, 224], resize_shorter=256), [])
    x.numpy().astype("<f4").tofile(os.path.join(out, "x.f32"))
    ref.astype("<f4").tofile(os.path.join(out, "ref.f32"))
    open(os.path.join(out, "meta.txt"), "w").write("%d 3 224 224 %d\n" % (n, ref.shape[1]))


if __name__ == "__main__":
    main()

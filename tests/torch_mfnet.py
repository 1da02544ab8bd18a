"""A PyTorch reference MF-Net written from the paper and the released checkpoint layout.

Used by the parity tests (random weights saved as `.pth`, loaded into Keras) and
by the benchmarks (the PyTorch side of the Keras/PyTorch comparison). Its
`state_dict()` keys and shapes are those of the released checkpoints.
"""

import collections

import numpy as np
import torch
from torch import nn

STAGES = (("conv2", 3, 96), ("conv3", 4, 192), ("conv4", 6, 384), ("conv5", 3, 768))


class BNActConv(nn.Module):
    """Pre-activation: BatchNorm → ReLU → conv without bias."""

    def __init__(self, dims, c_in, c_out, kernel, stride=1, groups=1):
        super().__init__()
        kernel = kernel[-dims:]
        stride = (stride,) * dims if isinstance(stride, int) else stride[-dims:]
        batch_norm, conv = (nn.BatchNorm2d, nn.Conv2d) if dims == 2 else (nn.BatchNorm3d, nn.Conv3d)
        self.bn = batch_norm(c_in, eps=1e-5)
        self.relu = nn.ReLU(inplace=True)
        padding = tuple(k // 2 for k in kernel)
        self.conv = conv(c_in, c_out, kernel, stride=stride, padding=padding, groups=groups, bias=False)

    def forward(self, x):
        return self.conv(self.relu(self.bn(x)))


class MultiFiberUnit(nn.Module):
    def __init__(self, dims, c_in, c_out, stride, first, fibers=16):
        super().__init__()
        c_mux = c_out // 4
        self.conv_i1 = BNActConv(dims, c_in, c_mux, (1, 1, 1))
        self.conv_i2 = BNActConv(dims, c_mux, c_in, (1, 1, 1))
        self.conv_m1 = BNActConv(dims, c_in, c_out, (3, 3, 3), stride, groups=fibers)
        if first:
            self.conv_m2 = BNActConv(dims, c_out, c_out, (1, 1, 1))
            self.conv_w1 = BNActConv(dims, c_in, c_out, (1, 1, 1), stride)
        else:
            self.conv_m2 = BNActConv(dims, c_out, c_out, (1, 3, 3), groups=fibers)

    def forward(self, x):
        h = x + self.conv_i2(self.conv_i1(x))
        h = self.conv_m2(self.conv_m1(h))
        shortcut = self.conv_w1(x) if hasattr(self, "conv_w1") else x
        return h + shortcut


class MFNet(nn.Module):
    """MF-Net 3D (`dims=3`, input `(N, 3, T, H, W)`) or 2D (`dims=2`, input `(N, 3, H, W)`)."""

    def __init__(self, num_classes, dims=3):
        super().__init__()
        conv, batch_norm = (nn.Conv2d, nn.BatchNorm2d) if dims == 2 else (nn.Conv3d, nn.BatchNorm3d)
        kernel, stride, padding = ((3, 5, 5), (1, 2, 2), (1, 2, 2)) if dims == 3 else ((5, 5), 2, 2)
        self.conv1 = nn.Sequential(
            collections.OrderedDict(
                conv=conv(3, 16, kernel, stride=stride, padding=padding, bias=False),
                bn=batch_norm(16, eps=1e-5),
                relu=nn.ReLU(inplace=True),
            )
        )
        pool = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)) if dims == 3 else nn.MaxPool2d(3, 2, 1)
        self.maxpool = pool
        c_in = 16
        for index, (name, depth, c_out) in enumerate(STAGES):
            units = collections.OrderedDict()
            for i in range(depth):
                if i == 0:
                    stride = ((2, 1, 1) if dims == 3 else (1, 1)) if index == 0 else (1, 2, 2)
                else:
                    stride = (1, 1, 1)
                units[f"B{i + 1:02d}"] = MultiFiberUnit(dims, c_in if i == 0 else c_out, c_out, stride, i == 0)
            setattr(self, name, nn.Sequential(units))
            c_in = c_out
        self.tail = nn.Sequential(collections.OrderedDict(bn=batch_norm(c_in, eps=1e-5), relu=nn.ReLU(inplace=True)))
        self.classifier = nn.Linear(c_in, num_classes)

    def forward(self, x):
        h = self.maxpool(self.conv1(x))
        for name, _, _ in STAGES:
            h = getattr(self, name)(h)
        h = self.tail(h)
        return self.classifier(h.flatten(2).mean(-1))


def randomized(model, seed=0):
    """`model` with random weights and random BatchNorm statistics, in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Conv3d, nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * (2 / fan_in) ** 0.5)
                if module.bias is not None:
                    module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                shape = module.weight.shape
                module.weight.copy_(0.5 + torch.rand(shape, generator=generator))
                module.bias.copy_(torch.randn(shape, generator=generator) * 0.1)
                module.running_mean.copy_(torch.randn(shape, generator=generator) * 0.1)
                module.running_var.copy_(0.5 + torch.rand(shape, generator=generator))
                module.num_batches_tracked.fill_(1000)
    return model.eval()


def torch_logits(path, dims, clips, mean, std, crop=224):
    """The PyTorch network's logits on uint8 clips `[N, T, H, W, 3]`, centre-cropped and normalised by hand."""
    state = torch.load(path)
    state = state.get("state_dict", state)
    network = MFNet(state["classifier.weight"].shape[0], dims=dims)
    network.load_state_dict(state)
    network.eval()
    top, left = (clips.shape[2] - crop) // 2, (clips.shape[3] - crop) // 2
    x = clips[:, :, top : top + crop, left : left + crop].astype(np.float32)
    x = (x / 255.0 - np.array(mean)) / np.array(std)
    x = np.moveaxis(x, -1, 1).astype(np.float32)  # N, C, T, H, W
    with torch.no_grad():
        return network(torch.from_numpy(x[:, :, 0] if dims == 2 else x)).numpy()

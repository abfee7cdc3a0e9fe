"""The three nets of the workloads in PyTorch, as `backprop` builds them
(src/nets/): He-normal weights (standard deviation sqrt(2 / fan_in)), zero biases.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def _he(modules):
    with torch.no_grad():
        for m in modules:
            m.weight.normal_(0.0, math.sqrt(2.0 / m.weight[0].numel()))
            m.bias.zero_()


class MultiLayerNet(nn.Module):
    """W1, W1-adam, W3: 784 -> 100 x5 (ReLU) -> 10."""

    def __init__(self):
        super().__init__()
        sizes = [784] + [100] * 5 + [10]
        self.affines = nn.ModuleList(nn.Linear(i, o) for i, o in zip(sizes, sizes[1:]))
        _he(self.affines)

    def forward(self, x):
        for affine in self.affines[:-1]:
            x = F.relu(affine(x))
        return self.affines[-1](x)

    def weights(self):
        return [a.weight for a in self.affines]


class SimpleConvNet(nn.Module):
    """W2: conv 30x5x5 (stride 1, pad 0) - ReLU - max-pool 2x2 - affine 100 - ReLU - affine 10."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 30, 5)
        self.affine1 = nn.Linear(30 * 12 * 12, 100)
        self.affine2 = nn.Linear(100, 10)
        _he([self.conv, self.affine1, self.affine2])

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv(x)), 2, 2)
        return self.affine2(F.relu(self.affine1(x.flatten(1))))


class DeepConvNet(nn.Module):
    """W4, W5: the textbook's deep_convnet.py. Six 3x3 convolutions of 16, 16, 32, 32,
    64, 64 filters (padding 1, but 2 on the fourth), each followed by ReLU, a 2x2
    max-pool after every second; affine 50 - ReLU - dropout 0.5 - affine 10 - dropout 0.5."""

    def __init__(self):
        super().__init__()
        spec = [(1, 16, 1), (16, 16, 1), (16, 32, 1), (32, 32, 2), (32, 64, 1), (64, 64, 1)]
        self.convs = nn.ModuleList(nn.Conv2d(i, o, 3, padding=p) for i, o, p in spec)
        self.affine1 = nn.Linear(64 * 4 * 4, 50)
        self.affine2 = nn.Linear(50, 10)
        _he(list(self.convs) + [self.affine1, self.affine2])

    def forward(self, x):
        for i, conv in enumerate(self.convs):
            x = F.relu(conv(x))
            if i % 2 == 1:
                x = F.max_pool2d(x, 2, 2)
        x = F.dropout(F.relu(self.affine1(x.flatten(1))), 0.5, self.training)
        return F.dropout(self.affine2(x), 0.5, self.training)

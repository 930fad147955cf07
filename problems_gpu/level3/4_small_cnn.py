# GPU-sized copy of problems/level3/2_small_cnn.py (about 85 GFLOP).
import torch
import torch.nn as nn

BATCH = 1024
IN_CHANNELS = 3
IMAGE_SIZE = 64
NUM_CLASSES = 10


class Model(nn.Module):
    """Small image classifier: three conv-BN-ReLU-maxpool blocks (BN in training mode),
    flatten, then a two-layer head."""

    def __init__(self, in_channels, image_size, num_classes):
        super().__init__()
        chans = [in_channels, 32, 64, 128]
        blocks = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            blocks += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                       nn.ReLU(), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*blocks)
        feat = chans[-1] * (image_size // 8) * (image_size // 8)
        self.head = nn.Sequential(nn.Linear(feat, 256), nn.ReLU(), nn.Linear(256, num_classes))

    def forward(self, x):
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.head(x)


def get_inputs():
    return [torch.randn(BATCH, IN_CHANNELS, IMAGE_SIZE, IMAGE_SIZE)]


def get_init_inputs():
    return [IN_CHANNELS, IMAGE_SIZE, NUM_CLASSES]

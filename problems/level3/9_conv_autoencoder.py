import torch
import torch.nn as nn

BATCH = 16
CHANNELS = 3
IMAGE_SIZE = 64


class Model(nn.Module):
    """Convolutional autoencoder: two strided conv+ReLU encoder layers down to a 1x1-conv
    bottleneck, two ConvTranspose2d decoder layers back to the input size, sigmoid output."""

    def __init__(self, channels):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(64, 16, 1),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(16, 64, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(64, channels, 4, stride=2, padding=1),
            nn.Sigmoid(),
        )

    def forward(self, x):
        return self.decoder(self.encoder(x))


def get_inputs():
    return [torch.randn(BATCH, CHANNELS, IMAGE_SIZE, IMAGE_SIZE)]


def get_init_inputs():
    return [CHANNELS]

"""The networks of two seed articles, transcribed from /work/shared/seeds as the
articles print them (test-only oracles for how their weights start): GoogLeNet for
CIFAR-10 (article 004, specs/googlenet_cifar.yaml) and Inception v3 (article 003,
specs/inception_v3_paper.yaml). Only the constructors matter here: the tests compare
the weights they draw, so the forwards are left out."""
from __future__ import annotations

import torch.nn as nn


# -- article 004: Pytorch CIFAR10 GoogLeNet -------------------------------------------

class BasicConv2d004(nn.Module):
    def __init__(self, in_channel, out_channel, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channel, out_channel, kernel_size, stride, padding)
        self.batch = nn.BatchNorm2d(out_channel)
        self.relu = nn.ReLU(True)


class Inception004(nn.Module):
    def __init__(self, in_channel, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj):
        super().__init__()
        self.branch1x1 = BasicConv2d004(in_channel, n1x1, 1)
        self.branch3x3 = nn.Sequential(BasicConv2d004(in_channel, n3x3red, 1),
                                       BasicConv2d004(n3x3red, n3x3, 3, padding=1))
        self.branch5x5 = nn.Sequential(BasicConv2d004(in_channel, n5x5red, 1),
                                       BasicConv2d004(n5x5red, n5x5, 5, padding=2))
        self.branch_pool = nn.Sequential(nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
                                         BasicConv2d004(in_channel, pool_proj, 1))


class InceptionAux004(nn.Module):
    def __init__(self, in_channel, num_classes):
        super().__init__()
        self.averagePool = nn.AvgPool2d(kernel_size=2)
        self.conv = BasicConv2d004(in_channel, 128, kernel_size=1)
        self.fc1 = nn.Sequential(nn.Linear(128, 64), nn.ReLU(True))
        self.fc2 = nn.Linear(64, num_classes)


class GoogLeNet004(nn.Module):
    def __init__(self, in_channel, num_classes, aux_logits=False, verbose=False, init_weights=True):
        super().__init__()
        self.verbose = verbose
        self.aux_logits = aux_logits
        self.conv1 = BasicConv2d004(3, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d004(64, 64, kernel_size=1)
        self.conv3 = BasicConv2d004(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = Inception004(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception004(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = Inception004(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception004(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception004(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception004(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception004(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception5a = Inception004(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception004(832, 384, 192, 384, 48, 128, 128)
        if self.aux_logits:
            self.aux1 = InceptionAux004(512, num_classes)
            self.aux2 = InceptionAux004(528, num_classes)
        self.avgpool = nn.AvgPool2d(1)
        self.dropout = nn.Dropout(0.4)
        self.classifier = nn.Linear(1024, num_classes)
        if init_weights:
            self._initialize_weights()

    def _initialize_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)


# -- article 003: Rethinking the Inception Architecture, implementation ---------------

class BasicConv2d003(nn.Module):
    def __init__(self, in_channel, F, size, stride, padding=0):
        super().__init__()
        self.layer = nn.Sequential(nn.Conv2d(in_channel, F, size, stride, padding=padding),
                                   nn.BatchNorm2d(F),
                                   nn.ReLU())


class InceptionA003(nn.Module):
    def __init__(self, in_channel, final_F):
        super().__init__()
        self.final_F = final_F
        self.branch_5x5 = nn.Sequential(BasicConv2d003(in_channel, 64, 1, 1, padding=0),
                                        BasicConv2d003(64, 64, 3, 1, padding=1),
                                        BasicConv2d003(64, 96, 3, 1, padding=1))
        self.branch_3x3 = nn.Sequential(BasicConv2d003(in_channel, 48, 1, 1, padding=0),
                                        BasicConv2d003(48, 64, 3, 1, padding=1))
        self.branch_pool = nn.Sequential(nn.MaxPool2d(3, 1, padding=1),
                                         BasicConv2d003(in_channel, 64, 1, 1, padding=0))
        self.branch_1x1 = BasicConv2d003(in_channel, 64, 1, 1, padding=0)


class InceptionB003(nn.Module):
    def __init__(self, in_channel, F, final_F):
        super().__init__()
        self.final_F = final_F
        self.branch_2n = nn.Sequential(BasicConv2d003(in_channel, F, 1, 1, padding=0),
                                       BasicConv2d003(F, F, (1, 7), 1, padding=(0, 3)),
                                       BasicConv2d003(F, F, (7, 1), 1, padding=(3, 0)),
                                       BasicConv2d003(F, F, (1, 7), 1, padding=(0, 3)),
                                       BasicConv2d003(F, 192, (7, 1), 1, padding=(3, 0)))
        self.branch_n = nn.Sequential(BasicConv2d003(in_channel, F, 1, 1, padding=0),
                                      BasicConv2d003(F, F, (1, 7), 1, padding=(0, 3)),
                                      BasicConv2d003(F, 192, (7, 1), 1, padding=(3, 0)))
        self.branch_pool = nn.Sequential(nn.MaxPool2d(3, 1, padding=1),
                                         BasicConv2d003(in_channel, 192, 1, 1, padding=0))
        self.branch_1x1 = BasicConv2d003(in_channel, 192, 1, 1, padding=0)


class GridReduc003(nn.Module):
    def __init__(self, in_channel, Fs, final_F):
        super().__init__()
        self.final_F = final_F
        F0, F1, F2 = Fs
        self.convstride_5x5 = nn.Sequential(BasicConv2d003(in_channel, F0, 1, 1, padding=0),
                                            BasicConv2d003(F0, F1, 3, 1, padding=1),
                                            BasicConv2d003(F1, F1, 3, 2, padding=0))
        self.convstride_3x3 = nn.Sequential(BasicConv2d003(in_channel, F0, 1, 1, padding=0),
                                            BasicConv2d003(F0, F2, 3, 2, padding=0))
        self.poolstride = nn.MaxPool2d(3, 2, padding=0)


class InceptionC003(nn.Module):
    def __init__(self, in_channel, final_F):
        super().__init__()
        self.final_F = final_F
        self.branch_5x5 = nn.Sequential(BasicConv2d003(in_channel, 448, 1, 1, padding=0),
                                        BasicConv2d003(448, 384, 3, 1, padding=1))
        self.branch_5x5_1 = nn.Sequential(self.branch_5x5,
                                          BasicConv2d003(384, 384, (1, 3), 1, padding=(0, 1)))
        self.branch_5x5_2 = nn.Sequential(self.branch_5x5,
                                          BasicConv2d003(384, 384, (3, 1), 1, padding=(1, 0)))
        self.branch_3x3 = BasicConv2d003(in_channel, 384, 1, 1, padding=0)
        self.branch_3x3_1 = nn.Sequential(self.branch_3x3,
                                          BasicConv2d003(384, 384, (1, 3), 1, padding=(0, 1)))
        self.branch_3x3_2 = nn.Sequential(self.branch_3x3,
                                          BasicConv2d003(384, 384, (3, 1), 1, padding=(1, 0)))
        self.branch_pool = nn.Sequential(nn.MaxPool2d(3, 1, padding=1),
                                         BasicConv2d003(in_channel, 192, 1, 1, padding=0))
        self.branch_1x1 = BasicConv2d003(in_channel, 320, 1, 1, padding=0)


class AuxOut003(nn.Module):
    def __init__(self, in_channel, p, num_classes):
        super().__init__()
        self.avgpool_conv = nn.Sequential(nn.AvgPool2d(5, 3, padding=0),
                                          BasicConv2d003(in_channel, 1024, 1, 1, padding=0),
                                          nn.AdaptiveAvgPool2d((1, 1)))
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(1024, num_classes)


class InceptionV3003(nn.Module):
    def __init__(self, init_weights=True, p=0.5, use_aux=True, in_channel=3, num_classes=1000):
        super().__init__()
        self.use_aux = use_aux
        self.conv1a = BasicConv2d003(in_channel, 32, 3, 2, padding=0)
        self.conv1b = BasicConv2d003(32, 32, 3, 1, padding=0)
        self.conv1c = BasicConv2d003(32, 64, 3, 1, padding=1)
        self.maxpool1 = nn.MaxPool2d(3, 2, padding=0)
        self.conv2a = BasicConv2d003(64, 80, 3, 1, padding=0)
        self.conv2b = BasicConv2d003(80, 192, 3, 2, padding=0)
        self.conv2c = BasicConv2d003(192, 288, 3, 1, padding=1)
        self.inceptionA_1 = InceptionA003(288, 288)
        self.inceptionA_2 = InceptionA003(288, 288)
        self.gridreducA = GridReduc003(288, (64, 96, 384), 768)
        self.inceptionB_1 = InceptionB003(768, 128, 768)
        self.inceptionB_2 = InceptionB003(768, 160, 768)
        self.inceptionB_3 = InceptionB003(768, 160, 768)
        self.inceptionB_4 = InceptionB003(768, 192, 768)
        self.gridreducB = GridReduc003(768, (192, 192, 320), 1280)
        self.inceptionC_1 = InceptionC003(1280, 2048)
        self.inceptionC_2 = InceptionC003(2048, 2048)
        if use_aux:
            self.aux = AuxOut003(768, p, num_classes)
        else:
            self.aux = None
        self.gap = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=p)
        self.classifier = nn.Linear(2048, num_classes)
        if init_weights:
            for m in self.modules():
                if isinstance(m, nn.Conv2d) or isinstance(m, nn.Conv2d):
                    nn.init.trunc_normal_(m.weight, 0, 1e-2, a=-2, b=2)
                    if m.bias is not None:
                        nn.init.constant_(m.bias, 0)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)

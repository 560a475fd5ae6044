# ruff: noqa: UP004, UP008, UP032, B007  (kept in the style of the PyTorch examples)
"""A DCGAN training loop in the shape of PyTorch's ``examples/dcgan/main.py``: a
ConvTranspose2d/BatchNorm2d/ReLU generator, a Conv2d/LeakyReLU discriminator, BCELoss, two
Adam optimizers, ``weights_init`` through ``Module.apply``. Written against ``torch``
only; tests/programs runs it on PyTorch and on lightgrad and compares the two.

Images are 16x16 (the example's are 64x64); noise comes from NumPy so both runs see the
same numbers."""
import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
import torch.utils.data


def weights_init(m):
    classname = m.__class__.__name__
    if classname.find('Conv') != -1:
        torch.nn.init.normal_(m.weight, 0.0, 0.02)
    elif classname.find('BatchNorm') != -1:
        torch.nn.init.normal_(m.weight, 1.0, 0.02)
        torch.nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self, ngpu, nz, ngf, nc):
        super(Generator, self).__init__()
        self.ngpu = ngpu
        self.main = nn.Sequential(
            # input is Z, going into a convolution
            nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            # state size. (ngf*4) x 4 x 4
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            # state size. (ngf*2) x 8 x 8
            nn.ConvTranspose2d(ngf * 2, nc, 4, 2, 1, bias=False),
            nn.Tanh()
            # state size. (nc) x 16 x 16
        )

    def forward(self, input):
        if input.is_cuda and self.ngpu > 1:
            output = nn.parallel.data_parallel(self.main, input, range(self.ngpu))
        else:
            output = self.main(input)
        return output


class Discriminator(nn.Module):
    def __init__(self, ngpu, ndf, nc):
        super(Discriminator, self).__init__()
        self.ngpu = ngpu
        self.main = nn.Sequential(
            # input is (nc) x 16 x 16
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf) x 8 x 8
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf*2) x 4 x 4
            nn.Conv2d(ndf * 2, 1, 4, 1, 0, bias=False),
            nn.Sigmoid()
        )

    def forward(self, input):
        if input.is_cuda and self.ngpu > 1:
            output = nn.parallel.data_parallel(self.main, input, range(self.ngpu))
        else:
            output = self.main(input)

        return output.view(-1, 1).squeeze(1)


def main(argv=None, initial_state=None):
    parser = argparse.ArgumentParser()
    parser.add_argument('--batchSize', type=int, default=8)
    parser.add_argument('--nz', type=int, default=8, help='size of the latent z vector')
    parser.add_argument('--ngf', type=int, default=4)
    parser.add_argument('--ndf', type=int, default=4)
    parser.add_argument('--niter', type=int, default=1, help='number of epochs')
    parser.add_argument('--lr', type=float, default=0.0002)
    parser.add_argument('--beta1', type=float, default=0.5)
    parser.add_argument('--cuda', action='store_true', default=False)
    parser.add_argument('--ngpu', type=int, default=1)
    parser.add_argument('--manualSeed', type=int, default=999)
    opt = parser.parse_args(argv)
    torch.manual_seed(opt.manualSeed)
    rng = np.random.default_rng(opt.manualSeed)
    device = torch.device("cuda:0" if opt.cuda else "cpu")
    ngpu, nz, ngf, ndf, nc = opt.ngpu, opt.nz, opt.ngf, opt.ndf, 3

    images = np.tanh(rng.standard_normal((32, nc, 16, 16))).astype(np.float32)
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(images))
    dataloader = torch.utils.data.DataLoader(dataset, batch_size=opt.batchSize, shuffle=False)

    netG = Generator(ngpu, nz, ngf, nc).to(device)
    netG.apply(weights_init)
    netD = Discriminator(ngpu, ndf, nc).to(device)
    netD.apply(weights_init)
    if initial_state is not None:
        for prefix, net in (('netG.', netG), ('netD.', netD)):
            net.load_state_dict({k[len(prefix):]: v for k, v in initial_state.items()
                                 if k.startswith(prefix)})
    initial = {f'{p}.{k}': v.detach().clone() for p, net in (('netG', netG), ('netD', netD))
               for k, v in net.state_dict().items()}

    criterion = nn.BCELoss()
    real_label = 1
    fake_label = 0

    # setup optimizer
    optimizerD = optim.Adam(netD.parameters(), lr=opt.lr, betas=(opt.beta1, 0.999))
    optimizerG = optim.Adam(netG.parameters(), lr=opt.lr, betas=(opt.beta1, 0.999))

    losses = []
    for epoch in range(opt.niter):
        for i, data in enumerate(dataloader, 0):
            ############################
            # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
            ###########################
            # train with real
            netD.zero_grad()
            real_cpu = data[0].to(device)
            batch_size = real_cpu.size(0)
            label = torch.full((batch_size,), real_label,
                               dtype=real_cpu.dtype, device=device)

            output = netD(real_cpu)
            errD_real = criterion(output, label)
            errD_real.backward()
            D_x = output.mean().item()

            # train with fake
            noise = torch.from_numpy(
                rng.standard_normal((batch_size, nz, 1, 1)).astype(np.float32)).to(device)
            fake = netG(noise)
            label.fill_(fake_label)
            output = netD(fake.detach())
            errD_fake = criterion(output, label)
            errD_fake.backward()
            D_G_z1 = output.mean().item()
            errD = errD_real + errD_fake
            optimizerD.step()

            ############################
            # (2) Update G network: maximize log(D(G(z)))
            ###########################
            netG.zero_grad()
            label.fill_(real_label)  # fake labels are real for generator cost
            output = netD(fake)
            errG = criterion(output, label)
            errG.backward()
            D_G_z2 = output.mean().item()
            optimizerG.step()

            losses += [errD.item(), errG.item(), D_x, D_G_z1, D_G_z2]
    final = {f'{p}.{k}': v for p, net in (('netG', netG), ('netD', netD))
             for k, v in net.state_dict().items()}
    return {"losses": losses, "initial": initial, "final": final}

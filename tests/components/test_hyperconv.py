"""Hyper-convolutions (seed 003): Eq. (3) parameter counts, coordinate grid,
equality with F.conv2d/F.conv3d and nn.ConvNd geometry, eval-mode kernel cache,
and convert_convs on MONAI UNets."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import components
from components.hyperconv import HyperConv2d, HyperConv3d, StandardConv2d, convert_convs
from tests.helpers import count_params

ODD = [1, 3, 5, 7, 9]
CLS = {2: HyperConv2d, 3: HyperConv3d}
CONV = {2: F.conv2d, 3: F.conv3d}
NNCONV = {2: nn.Conv2d, 3: nn.Conv3d}


def eq3(dims, c_in, c_out, n_l, hidden=(16, 16), groups=1):
    """Eq. (3): (N_L + 1) N_in N_out + sum_{j<L} (N_j + 1) N_{j+1}, N_0 = number of coordinates."""
    widths = (dims, *hidden, n_l)
    return (n_l + 1) * c_out * (c_in // groups) + sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:]))


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("k", ODD)
def test_parameter_count_is_eq3_and_independent_of_kernel_size(dims, k):
    for c_in, c_out in [(1, 1), (3, 8), (16, 32)]:
        m = CLS[dims](c_in, c_out, k, n_l=4, bias=False)
        closed_form = {2: 388, 3: 404}[dims] + 5 * c_in * c_out  # paper-notes at N_L = 4
        assert count_params(m) == eq3(dims, c_in, c_out, 4) == closed_form
        assert count_params(CLS[dims](c_in, c_out, k, n_l=4, bias=True)) == closed_form + c_out
    for n_l, hidden, groups in [(2, (16, 16), 1), (24, (16, 16), 1), (8, (8, 12, 6), 2)]:
        m = CLS[dims](4, 6, k, n_l=n_l, hidden=hidden, groups=groups, bias=False)
        assert count_params(m) == eq3(dims, 4, 6, n_l, hidden, groups)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_kernel_is_the_hyper_network_at_integer_centred_coordinates(dims, k):
    torch.manual_seed(0)
    m = CLS[dims](3, 2, k, n_l=4)
    kern = m.kernel()
    assert kern.shape == (2, 3) + (k,) * dims
    c = (k - 1) // 2
    for idx in torch.cartesian_prod(*[torch.arange(k)] * dims).reshape(-1, dims).tolist():
        xy = torch.tensor([float(i - c) for i in idx])  # centre pixel is the origin (Sec. 3)
        expected = m.hyper(xy).reshape(2, 3)  # one point through the 1x1-conv MLP
        torch.testing.assert_close(kern[(slice(None), slice(None), *idx)], expected)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("k", ODD)
def test_output_equals_functional_conv_with_generated_kernel(dims, k):
    torch.manual_seed(k)
    m = CLS[dims](3, 4, k, n_l=3).double()
    x = torch.randn(2, 3, *([11, 10, 9][:dims]), dtype=torch.float64)
    # torch's own 'same' padding is the reference geometry at stride 1
    ref = CONV[dims](x, m.kernel(), m.bias, padding="same")
    out = m(x)
    assert out.shape == ref.shape == (2, 4) + x.shape[2:]
    torch.testing.assert_close(out, ref)


GEOMETRIES = [dict(stride=2), dict(stride=(2, 1), padding=0), dict(stride=3, padding=(1, 3), dilation=2),
              dict(padding="valid", dilation=(1, 2)), dict(groups=2), dict(padding_mode="reflect"),
              dict(padding_mode="circular", stride=2), dict(kernel_size=(3, 5), padding=(1, 2))]


@pytest.mark.parametrize("geo", GEOMETRIES, ids=str)
def test_geometry_matches_nn_conv2d(geo):
    torch.manual_seed(0)
    kw = {"kernel_size": 5, **geo}
    hyp = HyperConv2d(4, 6, **kw)
    pad = kw.get("padding", "same")
    std = StandardConv2d(4, 6, **kw)
    nn_pad = {"same": tuple(d * (k - 1) // 2 for k, d in zip(hyp.kernel_size, hyp.dilation))}.get(pad, pad)
    ref = nn.Conv2d(4, 6, kw["kernel_size"], stride=kw.get("stride", 1), padding=nn_pad,
                    dilation=kw.get("dilation", 1), groups=kw.get("groups", 1),
                    padding_mode=kw.get("padding_mode", "zeros"))
    with torch.no_grad():
        ref.weight.copy_(hyp.kernel())
        ref.bias.copy_(hyp.bias)
    x = torch.randn(2, 4, 13, 12)
    torch.testing.assert_close(hyp(x), ref(x))
    assert std(x).shape == ref(x).shape


def test_same_padding_with_stride_gives_ceil_size():
    for s in (1, 2, 3):
        for n in (7, 8, 9):
            x = torch.randn(1, 2, n, n, n)
            y = HyperConv3d(2, 3, 3, stride=s)(x)
            assert y.shape[2:] == (-(-n // s),) * 3
            assert components.build("conv3d", "standard", in_channels=2, out_channels=3, kernel_size=3,
                                    stride=s)(x).shape == y.shape


def test_gradcheck_float64():
    # conv_default: he_normal's zero biases put every hidden unit of the centre tap exactly
    # on the leaky ReLU's kink, where finite differences and the subgradient disagree.
    torch.manual_seed(0)
    m = HyperConv2d(2, 2, 3, n_l=2, hidden=(3, 3), stride=2, init="conv_default").double()
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    params = tuple(m.parameters())

    def f(x, *ps):
        return torch.func.functional_call(m, dict(zip([n for n, _ in m.named_parameters()], ps)), (x,))

    assert torch.autograd.gradcheck(f, (x, *params))


def _trained_pair():
    torch.manual_seed(0)
    m = HyperConv2d(3, 4, 5, n_l=4)
    x = torch.randn(2, 3, 8, 8)
    return m, x


def test_eval_cache_is_reused_and_never_stale_after_optimizer_step():
    m, x = _trained_pair()
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    m.eval()
    with torch.no_grad():
        y0 = m(x)
        k0 = m.kernel()
        assert m.kernel() is k0  # cached: generated once, reused
    # an optimizer step while in eval mode (e.g. fine-tuning with frozen BN statistics)
    m.train()
    (m(x) ** 2).sum().backward()
    m.eval()
    opt.step()
    with torch.no_grad():
        y1 = m(x)
        ref = F.conv2d(x, m._generate(), m.bias, padding=2)
    assert not torch.allclose(y0, y1)
    torch.testing.assert_close(y1, ref, rtol=0, atol=0)
    # in-place edit of one hyper-network weight without any mode switch
    with torch.no_grad():
        m.kernel()
        m.hyper[0].weight[0, 0] += 1.0
        torch.testing.assert_close(m(x), F.conv2d(x, m._generate(), m.bias, padding=2), rtol=0, atol=0)


def test_eval_cache_is_never_stale_after_load_state_dict():
    m, x = _trained_pair()
    other = HyperConv2d(3, 4, 5, n_l=4)
    m.eval()
    other.eval()
    with torch.no_grad():
        m(x)
        m.load_state_dict(other.state_dict())
        torch.testing.assert_close(m(x), other(x), rtol=0, atol=0)
        m.load_state_dict(copy.deepcopy(_trained_pair()[0].state_dict()), assign=True)
        torch.testing.assert_close(m(x), F.conv2d(x, m._generate(), m.bias, padding=2), rtol=0, atol=0)


def test_eval_mode_with_autograd_still_trains_and_follows_dtype():
    m, x = _trained_pair()
    m.eval()
    with torch.no_grad():
        m(x)  # fill the cache
    m(x).sum().backward()  # autograd on: must not reuse the graph-less cached kernel
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())
    with torch.inference_mode():
        m(x)
    m.double()
    with torch.no_grad():
        assert m(x.double()).dtype == torch.float64


def test_registry_entries():
    assert set(components.available("conv2d")) >= {"standard", "hyper"}
    assert set(components.available("conv3d")) >= {"standard", "hyper"}
    s = components.build("conv2d", "standard", in_channels=2, out_channels=3, kernel_size=5, n_l=8)
    assert isinstance(s, nn.Conv2d) and s.padding == (2, 2)
    h = components.build("conv3d", "hyper", in_channels=2, out_channels=3, kernel_size=5, n_l=8)
    assert count_params(h) == eq3(3, 2, 3, 8) + 3


def _unet(**kw):
    from monai.networks.nets import UNet
    args = dict(spatial_dims=2, in_channels=1, out_channels=2, channels=(4, 8, 16), strides=(2, 2),
                kernel_size=5, num_res_units=0)
    args.update(kw)
    return UNet(**args)


def _convs(model, cls=(nn.Conv2d, nn.Conv3d)):
    return [(n, m) for n, m in model.named_modules() if isinstance(m, cls)]


@pytest.mark.parametrize("res_units", [0, 2])
def test_convert_convs_monai_unet(res_units):
    torch.manual_seed(0)
    net = _unet(num_res_units=res_units)
    x = torch.randn(2, 1, 32, 28)
    before = {n: (m.in_channels, m.out_channels, m.stride, m.padding, m.dilation, m.bias is not None)
              for n, m in _convs(net)}
    transposed = [m for _, m in _convs(net, nn.ConvTranspose2d)]
    y0 = net(x)
    out = convert_convs(net, kind="hyper", n_l=4)
    assert out is net and not _convs(net)  # no standard conv is left
    hyper = dict(_convs(net, HyperConv2d))
    assert set(hyper) == set(before)
    for n, m in hyper.items():
        assert (m.in_channels, m.out_channels, m.stride, m.padding, m.dilation, m.bias is not None) == before[n]
    assert [m for _, m in _convs(net, nn.ConvTranspose2d)] == transposed  # left as they are
    assert net(x).shape == y0.shape


def test_convert_convs_reproduces_non_same_geometry_exactly():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=0), nn.ReLU(),
                        nn.Conv2d(4, 4, 5, stride=2, padding=1, dilation=2, bias=False),
                        nn.Conv2d(4, 6, 3, stride=2, padding="valid"), nn.Conv2d(6, 6, 1),
                        nn.Conv2d(6, 6, 3, padding="same", padding_mode="replicate"))
    x = torch.randn(1, 3, 37, 33)
    originals = copy.deepcopy(net)
    convert_convs(net)
    assert len(_convs(net, HyperConv2d)) == 5
    # copy each generated kernel into the replaced conv: identical outputs
    with torch.no_grad():
        for (_, o), (_, h) in zip(_convs(originals), _convs(net, HyperConv2d)):
            o.weight.copy_(h.kernel())
            if o.bias is not None:
                o.bias.copy_(h.bias)
    torch.testing.assert_close(net(x), originals(x))
    # a larger kernel keeps every output shape by padding more; 1x1 stays 1x1
    grown = convert_convs(copy.deepcopy(originals), kernel_size=7)
    assert [m.kernel_size for _, m in _convs(grown, HyperConv2d)] == [(7, 7)] * 3 + [(1, 1), (7, 7)]
    assert grown(x).shape == originals(x).shape
    with pytest.raises(ValueError, match="kernel_size"):
        convert_convs(copy.deepcopy(originals), kernel_size=1)  # a valid 3x3 cannot shrink
    kept = convert_convs(copy.deepcopy(originals), skip_pointwise=True)
    assert [type(m) for m in kept].count(nn.Conv2d) == 1
    assert isinstance(convert_convs(nn.Conv3d(2, 2, 3), n_l=2), HyperConv3d)
    with pytest.raises(ValueError, match="even"):
        convert_convs(nn.Conv2d(2, 2, 4))
    with pytest.raises(ValueError, match="kind"):
        convert_convs(nn.Conv2d(2, 2, 3), kind="dilated")
    with pytest.raises(ValueError, match="kernel_size"):
        convert_convs(nn.Conv2d(2, 2, 3), kernel_size=4)
    shared = nn.Conv2d(2, 2, 3, padding=1)
    tied = convert_convs(nn.Sequential(shared, nn.ReLU(), shared))
    assert isinstance(tied[0], HyperConv2d) and tied[0] is tied[2]  # weight sharing survives


def test_convert_3x3_unet_to_5x5_hyper_3d_and_standard():
    torch.manual_seed(0)
    net = _unet(spatial_dims=3, kernel_size=3, num_res_units=1, channels=(2, 4), strides=(2,))
    x = torch.randn(1, 1, 8, 8, 6)
    y0 = net(x)
    convert_convs(net, kernel_size=5, n_l=2)
    hyp = _convs(net, HyperConv3d)
    assert hyp and not _convs(net) and all(m.kernel_size in ((5, 5, 5), (1, 1, 1)) for _, m in hyp)
    assert net(x).shape == y0.shape
    std = convert_convs(_unet(), kind="standard")
    assert all(isinstance(m, StandardConv2d) for _, m in _convs(std))


@pytest.mark.parametrize("dims, k, hidden, slope", [(2, 5, (16, 16), 0.1), (3, 3, (16, 16), 0.1), (2, 7, (8,), 0.3)])
def test_he_normal_kernel_statistics_match_the_closed_form(dims, k, hidden, slope):
    """Default init = the authors' Keras he_normal (issue 26): weights of std sqrt(2/fan_in),
    truncated at 2/0.8796 of it, zero hidden biases.  Each layer's pre-activation z then has
    E[z²] = (2/fan_in) E|a|² and a leaky ReLU keeps (1 + s²)/2 of a symmetric z's energy, so at
    coordinate p the generated kernel has E[K(p)²] = (2/dims) (1 + s²)^L |p|² (L hidden
    layers), mean 0, and K(0) = 0 exactly (every layer is positively homogeneous)."""
    torch.manual_seed(0)
    m = CLS[dims](4, 4, k, n_l=4, hidden=hidden, negative_slope=slope)
    assert m.init == "he_normal"
    p2 = m.coords.pow(2).sum(1)
    rounds, sq, mean = 2000, torch.zeros_like(p2), torch.zeros_like(p2)
    for _ in range(rounds):
        m.reset_parameters()
        w = m.hyper(m.coords).detach()
        sq, mean = sq + w.pow(2).mean(1), mean + w.mean(1)
        for lin in (x for x in m.hyper if isinstance(x, nn.Linear)):
            assert lin.weight.abs().max() <= 2 * (2 / lin.in_features) ** 0.5 / 0.87962566 + 1e-6
            assert torch.equal(lin.bias, torch.zeros_like(lin.bias))
    want = (2 / dims) * (1 + slope ** 2) ** (len(hidden) + 1) * p2
    centre = p2 == 0
    assert torch.equal(sq[centre], torch.zeros(1))                      # K(0) = 0 in every draw
    ratio = (sq[~centre].sum() / rounds / want[~centre].sum()).item()
    assert abs(ratio - 1) < 0.1, ratio                                  # Monte Carlo SE ≈ 0.025
    assert (mean[~centre] / rounds).abs().max() < 0.1 * want[~centre].max().sqrt()


def test_conv_default_init_has_nn_conv_kernel_rms_and_is_100x_smaller():
    """conv_default: RMS 1/sqrt(3 fan_in) = 0.0204 here; he_normal's expected RMS is
    sqrt(1.01³ · 4) = 2.03 for a 5x5 kernel (the formula above), one draw varies by ~2x."""
    torch.manual_seed(0)
    old = HyperConv2d(32, 32, 5, n_l=4, init="conv_default")
    fan_in = 32 * 25
    torch.testing.assert_close(old.kernel().pow(2).mean().sqrt().item(), (3 * fan_in) ** -0.5, rtol=1e-5, atol=0)
    new = HyperConv2d(32, 32, 5, n_l=4)
    assert new.kernel().pow(2).mean().sqrt() > 10 * old.kernel().pow(2).mean().sqrt()

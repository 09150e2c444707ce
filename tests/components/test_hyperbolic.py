"""Leapfrog network of "Fully Hyperbolic CNNs" (components/hyperbolic.py):
f(Y) = -K^T relu(N(KY + b)) materialised, exact backwards recomputation of
the states (Sec. 5), reversible gradients equal to plain autograd (including
the learnable wavelet angles), and activation memory independent of depth."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from components import build
from components.hyperbolic import LeapfrogStep, propagate, reverse

D64 = torch.float64


def _net(coarsen="dwt", dims=2, reversible=True, seed=0, **kw):
    # bias and a learned opening: every parameter kind of the network is exercised
    torch.manual_seed(seed)
    args = dict(in_channels=2, out_channels=3, width=2, depth=2, n_levels=2, coarsen=coarsen, dims=dims,
                h=0.5, reversible=reversible, bias=True, layout="learned_opening")
    net = build("hyperbolic_net", "leapfrog", **{**args, **kw}).to(D64)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("theta") or name.endswith("phi"):
                p.uniform_(-math.pi, math.pi)  # far from Haar, to test general angles
            elif name.endswith("bias"):
                p.normal_()  # nonzero b so it is exercised
    return net


def test_f_is_minus_k_transpose_of_normalised_relu():
    step = LeapfrogStep(3, 2, h=0.1, bias=True).to(D64)
    with torch.no_grad():
        step.bias.normal_()
    y = torch.randn(2, 3, 5, 6, dtype=D64)
    z = F.conv2d(y, step.weight, step.bias, padding=1)
    a = torch.relu(z / torch.sqrt((z ** 2).sum(1, keepdim=True) + 1e-5)).detach()
    # K^T a is the gradient of <K y, a> with respect to y: an independent transpose.
    yr = y.clone().requires_grad_()
    (kt_a,) = torch.autograd.grad((F.conv2d(yr, step.weight, padding=1) * a).sum(), yr)
    torch.testing.assert_close(step.f(y), -kt_a, atol=1e-12, rtol=0)
    y_prev = torch.randn_like(y)
    y_cur, y_next = step((y_prev, y))
    torch.testing.assert_close(y_next, 2 * y - y_prev - 0.01 * kt_a, atol=1e-12, rtol=0)


@pytest.mark.parametrize("coarsen,dims", [("dwt", 2), ("learnable_dwt", 2), ("dwt", 3), ("learnable_dwt", 3)])
def test_states_recomputed_backwards_equal_forward_states(coarsen, dims):
    net = _net(coarsen, dims, depth=3, n_levels=2 if dims == 2 else 1)
    x = torch.randn(2, 2, *([8] * dims), dtype=D64)
    with torch.no_grad():
        y0 = net.opening(x)
        final, fwd = propagate(net.ops, (y0, y0), keep=True)
        start, bwd = reverse(net.ops, final, keep=True)
    assert len(fwd) == len(bwd) == len(net.ops) + 1
    for pf, pb in zip(fwd, bwd):
        for a, b in zip(pf, pb):
            assert a.shape == b.shape
            assert (a - b).abs().max() < 1e-5
    assert (start[0] - y0).abs().max() < 1e-5 and (start[1] - y0).abs().max() < 1e-5


@pytest.mark.parametrize("coarsen,dims", [("dwt", 2), ("learnable_dwt", 2), ("learnable_dwt", 3)])
def test_reversible_gradients_equal_autograd(coarsen, dims):
    levels = 2 if dims == 2 else 1  # 3D at 2 levels has 128-channel 3x3x3 convs: slow on CPU
    rev = _net(coarsen, dims, reversible=True, n_levels=levels)
    plain = _net(coarsen, dims, reversible=False, n_levels=levels)
    plain.load_state_dict(rev.state_dict())
    x = torch.randn(2, 2, *([8] * dims), dtype=D64)
    target = torch.randint(0, 3, (2, *([8] * dims)))
    grads = []
    for net in (rev, plain):
        xr = x.clone().requires_grad_()
        loss = F.cross_entropy(net(xr), target) + net(xr).pow(2).mean()
        loss.backward()
        grads.append([xr.grad] + [p.grad for p in net.parameters()])
    names = ["input"] + [n for n, _ in rev.named_parameters()]
    assert any("theta" in n for n in names) == (coarsen == "learnable_dwt")
    for name, a, b in zip(names, *grads):
        assert a is not None and b is not None, name
        assert b.abs().max() > 0, name
        assert (a - b).abs().max() < 1e-6, name


def test_reversible_float32_gradients_close_to_float64():
    ref = _net("learnable_dwt", reversible=False, depth=4)
    rev = _net("learnable_dwt", reversible=True, depth=4).float()
    rev.load_state_dict(ref.state_dict())
    x = torch.randn(2, 2, 8, 8, dtype=D64)
    ref(x).pow(2).mean().backward()
    rev(x.float()).pow(2).mean().backward()
    g64 = torch.cat([p.grad.flatten() for p in ref.parameters()])
    g32 = torch.cat([p.grad.double().flatten() for p in rev.parameters()])
    assert (g32 - g64).norm() / g64.norm() < 1e-4


def test_reversible_chain_gradcheck():
    net = _net("learnable_dwt", width=1, depth=1, n_levels=1, in_channels=1, out_channels=1)
    x = torch.randn(1, 1, 4, 4, dtype=D64, requires_grad=True)
    # Input, the wavelet angles and one layer's K and b (all parameters would take ~20 s).
    params = [p for n, p in net.named_parameters() if n.endswith(("theta", "phi")) or n.startswith("ops.0.")]
    assert len(params) == 6
    assert torch.autograd.gradcheck(lambda x, *ps: net(x), (x, *params), fast_mode=True)


def _saved_bytes(net, x):
    own = {p.untyped_storage().data_ptr() for p in net.parameters()}
    seen = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in own:
            seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = net(x)
    out.sum().backward()
    return sum(seen.values())


def test_reversible_memory_does_not_grow_with_depth():
    x = torch.randn(1, 2, 8, 8, dtype=D64)
    rev = [_saved_bytes(_net(depth=d), x) for d in (1, 4)]
    plain = [_saved_bytes(_net(depth=d, reversible=False), x) for d in (1, 4)]
    assert rev[0] == rev[1] > 0
    assert plain[1] > 2 * plain[0]


@pytest.mark.parametrize("coarsen", ["avgpool", "maxpool"])
def test_pooling_nets_shapes_and_refuse_reversible(coarsen):
    net = build("hyperbolic_net", "leapfrog", in_channels=2, out_channels=4, width=4, depth=1, n_levels=2,
                coarsen=coarsen, reversible=False)
    out = net(torch.randn(1, 2, 8, 12))
    assert out.shape == (1, 4, 8, 12)
    with pytest.raises(ValueError, match="reversible"):
        build("hyperbolic_net", "leapfrog", coarsen=coarsen, reversible=True)


def test_channel_bookkeeping_and_input_validation():
    net = build("hyperbolic_net", "leapfrog", width=3, depth=1, n_levels=2, dims=3, in_channels=1)
    widths = [op.weight.shape[0] for op in net.ops if isinstance(op, LeapfrogStep)]
    assert widths == [3, 24, 192, 24, 3]
    assert net(torch.randn(1, 1, 4, 8, 4)).shape == (1, 2, 4, 8, 4)
    with pytest.raises(ValueError, match="divisible"):
        net(torch.randn(1, 1, 4, 6, 4))


def test_no_grad_forward_matches():
    rev, plain = _net(), _net(reversible=False)
    plain.load_state_dict(rev.state_dict())
    x = torch.randn(1, 2, 8, 8, dtype=D64)
    with torch.no_grad():
        a = rev(x)
    torch.testing.assert_close(a, plain(x).detach(), atol=1e-12, rtol=0)


def test_default_leapfrog_has_no_bias_so_f_vanishes_at_zero_and_ignores_scale():
    """Issue 26: bias off by default, as the authors' code: f(Y) = −Kᵀ relu(N(K Y)), hence
    f(0) = 0 and f(cY) = f(Y) for c > 0 up to N's ε (N(x) = x / sqrt(Σ_c x² + 1e-5))."""
    step = LeapfrogStep(3, 2).to(D64)
    assert step.bias is None and not any(n.endswith("bias") for n, _ in step.named_parameters())
    torch.testing.assert_close(step.f(torch.zeros(1, 3, 4, 4, dtype=D64)), torch.zeros(1, 3, 4, 4, dtype=D64))
    y = torch.randn(2, 3, 5, 5, dtype=D64)
    torch.testing.assert_close(step.f(1e3 * y), step.f(1e6 * y), atol=1e-9, rtol=1e-9)
    net = build("hyperbolic_net", "leapfrog")
    assert not any(n.endswith("bias") for n, _ in net.named_parameters())


@pytest.mark.parametrize("dims", [2, 3])
def test_reference_layout_repeats_the_image_and_has_a_3x3_head_without_bias(dims):
    """layout='reference' (default): Y_{-1} = Y_0 = the input's channels repeated up to width
    (no learned opening), logits = a 3^dims convolution without bias of the final state."""
    torch.manual_seed(0)
    net = build("hyperbolic_net", "leapfrog", in_channels=2, out_channels=3, width=4, depth=1, n_levels=1,
                dims=dims).to(D64)
    assert net.layout == "reference" and net.open is None
    assert net.head.kernel_size == (3,) * dims and net.head.bias is None
    x = torch.randn(1, 2, *([4] * dims), dtype=D64)
    y0 = torch.cat([x, x], 1)
    with torch.no_grad():
        _, y = propagate(net.ops, (y0, y0))
        conv = (F.conv2d, F.conv3d)[dims - 2]
        torch.testing.assert_close(net(x), conv(y, net.head.weight, padding=1), atol=1e-12, rtol=0)
    old = build("hyperbolic_net", "leapfrog", in_channels=2, width=3, layout="learned_opening")
    assert old.open.kernel_size == (3, 3) and old.head.kernel_size == (1, 1) and old.head.bias is not None
    with pytest.raises(ValueError, match="multiple of in_channels"):
        build("hyperbolic_net", "leapfrog", in_channels=2, width=3)
    with pytest.raises(ValueError, match="layout"):
        build("hyperbolic_net", "leapfrog", layout="unet")


def test_wavelet_scale_reaches_every_transition():
    net = build("hyperbolic_net", "leapfrog", width=4, in_channels=1, depth=1, wavelet_scale="reference")
    ops = [op.op for op in net.ops if hasattr(op, "op")]
    assert len(ops) == 4 and all(o.scale == "reference" and math.isclose(o.gain, 0.5) for o in ops)
    assert build("hyperbolic_net", "leapfrog", coarsen="avgpool", reversible=False, wavelet_scale="reference")

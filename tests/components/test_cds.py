"""Property tests for the co-domain symmetric layers and models (paper 002).

A C-scaling is z -> s z with a random complex scalar s; "phase" means |s| = 1.
Equivariance / invariance is asserted in float64 against the unscaled output.
The "reference" settings (where the authors' code, sutkarsh/cds, differs from the paper)
are checked against formulas written here from issue 25's description of that code.
"""
import cmath
import math

import pytest
import torch
import torch.nn.functional as F

import components
from components.cds import (ComplexConv2d, ComplexScale, CReLU, EquivariantActivation, EquivariantBatchNorm2d,
                            GTReLU, MagnitudeMaxPool2d, safe_angle)
from components.cds_encodings import LAB_MAX_MAGNITUDE, rgb_to_lab
from components.cds_invariant import ConjugateLayer, DivisionLayer, PrototypeDistance, divide

C128 = torch.complex128


def _s(seed, phase_only=False):
    g = torch.Generator().manual_seed(seed)
    mag, phase = torch.rand(2, generator=g, dtype=torch.float64).tolist()
    # |s| in [0.5, 2], phase in [pi/4, 7 pi/4] (away from the identity, so "not invariant" has teeth)
    return (1.0 if phase_only else 0.5 + 1.5 * mag) * cmath.exp(1j * math.pi * (0.25 + 1.5 * phase))


def _z(*shape, seed=0):
    return torch.randn(*shape, dtype=C128, generator=torch.Generator().manual_seed(seed))


def _close(a, b, tol=1e-10):
    assert (a - b).abs().max().item() <= tol * max(1.0, b.abs().max().item())


# ------------------------------------------------------------------ EConv (Sec. 3.1, Eq. 1)

@pytest.mark.parametrize("stride,padding,groups", [(1, 1, 1), (2, 0, 2), (2, 1, 4)])
def test_gauss_trick_equals_four_multiplications_and_torch_complex_conv(stride, padding, groups):
    torch.manual_seed(0)
    conv = ComplexConv2d(8, 12, 3, stride=stride, padding=padding, groups=groups, gauss=True).double()
    four = ComplexConv2d(8, 12, 3, stride=stride, padding=padding, groups=groups, gauss=False).double()
    four.load_state_dict(conv.state_dict())
    z = _z(2, 8, 9, 9)
    w = torch.complex(conv.weight_real, conv.weight_imag)
    ref = F.conv2d(z, w, stride=stride, padding=padding, groups=groups)  # torch's own complex conv
    _close(conv(z), ref)
    _close(four(z), ref)


def test_econv_is_equivariant_and_biased_conv_is_not():
    torch.manual_seed(0)
    z = _z(2, 3, 8, 8)
    for seed in range(3):
        s = _s(seed)
        conv = ComplexConv2d(3, 5, 3, padding=1).double()
        _close(conv(s * z), s * conv(z))
    dcn = ComplexConv2d(3, 5, 3, padding=1, bias=True).double()
    with torch.no_grad():
        dcn.bias.fill_(0.3)
    assert (dcn(_s(0) * z) - _s(0) * dcn(z)).abs().max() > 1e-2


def test_real_parameters_follow_module_dtype():
    conv = ComplexConv2d(2, 4, 3, bias=True)
    assert all(not p.is_complex() for p in conv.parameters())
    assert conv(_z(1, 2, 5, 5).to(torch.complex64)).dtype == torch.complex64
    assert conv.double()(_z(1, 2, 5, 5)).dtype == C128


# ---------------------------------------------------------- non-linearities (Secs. 3.2, 3.6)

def test_equivariant_crelu_is_c_scale_equivariant_and_crelu_is_not():
    z = _z(2, 6, 5, 5)
    act = EquivariantActivation(CReLU())
    for seed in range(3):
        s = _s(seed)
        _close(act(s * z), s * act(z), 1e-8)
    s = _s(7, phase_only=True)
    assert (CReLU()(s * z) - s * CReLU()(z)).abs().max() > 1e-1


def test_gtrelu_formula_and_threshold():
    g = GTReLU(1, r=0.0, scale=False).double()
    z = torch.tensor([1 + 1j, 1 - 1j, -2 + 0j, 0j], dtype=C128).view(1, 1, 4)
    expect = torch.tensor([1 + 1j, math.sqrt(2), -2 + 0j, 0j], dtype=C128).view(1, 1, 4)
    _close(g(z), expect, 1e-12)
    g3 = GTReLU(1, r=3.0, scale=False).double()
    _close(g3(z).abs(), torch.full((1, 1, 4), 3.0, dtype=torch.float64), 1e-12)
    with torch.no_grad():
        g.phase_scale.fill_(0.5)  # w halves the kept phase: 1+i -> sqrt(2) e^{i pi/8}
    _close(g(z)[0, 0, 0], torch.tensor(math.sqrt(2) * cmath.exp(1j * math.pi / 8), dtype=C128), 1e-12)


def test_gtrelu_r0_magnitude_equivariant_not_phase_and_its_e_version_is():
    torch.manual_seed(0)
    z = _z(2, 4, 6, 6)
    g = GTReLU(4, r=0.0).double()
    _close(g(2.7 * z), 2.7 * g(z))
    s = _s(3, phase_only=True)
    assert (g(s * z) - s * g(z)).abs().max() > 1e-1
    assert (GTReLU(4, r=0.5).double()(0.3 * z) - 0.3 * GTReLU(4, r=0.5).double()(z)).abs().max() > 1e-2
    e = EquivariantActivation(GTReLU(4, r=0.0)).double()
    for seed in range(3):
        s = _s(seed)
        _close(e(s * z), s * e(z), 1e-8)


def test_gradients_match_finite_differences_and_are_finite_at_zero():
    torch.manual_seed(0)
    for layer in (GTReLU(2).double(), EquivariantActivation(GTReLU(2, scale=False)).double(),
                  DivisionLayer(2).double(), EquivariantBatchNorm2d(2).double()):
        z = _z(2, 2, 2, 2).requires_grad_()
        assert torch.autograd.gradcheck(lambda t: layer(t), (z,), fast_mode=True)
    z = torch.zeros(1, 3, 2, 2, dtype=C128, requires_grad=True)
    GTReLU(3, r=0.5).double()(z).abs().sum().backward()
    assert torch.isfinite(torch.view_as_real(z.grad)).all()
    assert safe_angle(torch.zeros(2, dtype=C128)).eq(0).all()


# ------------------------------------------------------------------- pooling and BN (3.3, 3.4)

def test_magnitude_max_pool_picks_largest_modulus_and_is_equivariant():
    z = _z(2, 3, 6, 6)
    pool = MagnitudeMaxPool2d(2)
    out = pool(z)
    win = z.unfold(2, 2, 2).unfold(3, 2, 2).reshape(2, 3, 3, 3, 4)  # materialised windows
    ref = win.gather(-1, win.abs().argmax(-1, keepdim=True)).squeeze(-1)
    _close(out, ref, 0)
    for seed in range(3):
        s = _s(seed)
        _close(pool(s * z), s * out)


def test_equivariant_batchnorm_formula_phase_equivariance_and_magnitude_invariance():
    torch.manual_seed(0)
    z = _z(8, 4, 3, 3)
    bn = EquivariantBatchNorm2d(4, bn_eps=1e-12).double()
    out = bn(z)
    ref = F.batch_norm(z.abs(), None, None, training=True, eps=1e-12) * z / z.abs()
    _close(out, ref)
    s = _s(1)
    _close(bn(s * z), s / abs(s) * out, 1e-9)  # train mode: invariant to a batch-global |s|
    bn.eval()
    u = _s(2, phase_only=True)
    _close(bn(u * z), u * bn(z))


# --------------------------------------------------------------- invariant layers (3.5)

def test_division_and_conjugate_invariances():
    torch.manual_seed(0)
    z = _z(2, 4, 6, 6)
    div = DivisionLayer(4).double()
    div_abs = DivisionLayer(4, relative_eps=False, shared_denominator=False).double()
    conj = ConjugateLayer(4).double()
    for seed in range(3):
        s, u = _s(seed), _s(seed, phase_only=True)
        _close(div(s * z), div(z), 1e-9)
        _close(div_abs(u * z), div_abs(z), 1e-9)
        _close(conj(u * z), conj(z))
        _close(conj(abs(s) * z), abs(s) ** 2 * conj(z))
    z2 = _z(2, 4, 6, 6, seed=1)
    _close(divide(z, z2, eps=1e-300), z / z2)
    assert (conj(_s(0) * z) - conj(z)).abs().max() > 1e-2  # not invariant to magnitude


# --------------------------------------------------------------- prototype distance (3.7)

def test_prototype_distance_values():
    pd = PrototypeDistance(2, 1, metric="manifold").double()
    with torch.no_grad():
        pd.prototypes.copy_(torch.tensor([[[1.0], [0.0]], [[0.0], [math.e]]]))  # p = (1, i e)
    f = torch.tensor([[1 + 0j, 1 + 0j]], dtype=C128)
    # channel 0: d = 0; channel 1: (ln 1 - ln e)^2 + (pi/2)^2; logits = -sqrt(mean)
    assert torch.allclose(pd(f), torch.tensor([[-math.sqrt((1 + (math.pi / 2) ** 2) / 2)]],
                                              dtype=torch.float64), atol=1e-5)
    pe = PrototypeDistance(3, 4).double()
    f = _z(5, 3)
    p = torch.complex(pe.prototypes[0], pe.prototypes[1])
    ref = -((f[:, :, None] - p[None]).abs() ** 2).mean(1).sqrt()
    _close(pe(f), ref)


def test_invariant_prototype_distance():
    torch.manual_seed(0)
    f = _z(4, 6)
    man = PrototypeDistance(6, 3, invariant=True, metric="manifold").double()
    euc = PrototypeDistance(6, 3, invariant=True).double()
    for seed in range(3):
        s, u = _s(seed), _s(seed, phase_only=True)
        _close(man(s * f), man(f))
        _close(euc(u * f), euc(f))
        _close(euc(s * f), abs(s) * euc(f))  # Euclidean distance is 1-homogeneous
    assert (PrototypeDistance(6, 3).double()(_s(0, True) * f) - PrototypeDistance(6, 3).double()(f)).abs().max() > 1e-2


# ----------------------------------------------------------------------------- encodings

def test_encodings():
    rgb = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    r, g, b = rgb.unbind(1)
    sl = components.build("encoding", "sliding")(rgb)
    _close(sl, torch.stack([r + 1j * g, g + 1j * b], 1), 0)
    rgbz = components.build("encoding", "rgb")(rgb)
    assert rgbz.dtype == C128 and rgbz.imag.eq(0).all() and rgbz.real.equal(rgb)
    lab = components.build("encoding", "lab")(rgb)
    ref = rgb_to_lab(rgb) / LAB_MAX_MAGNITUDE
    _close(lab, torch.stack([ref[:, 0] + 0j, ref[:, 1] + 1j * ref[:, 2]], 1))
    for name, c in (("rgb", 3), ("lab", 2), ("sliding", 2)):
        enc = components.build("encoding", name)
        assert enc.channels == c == enc(rgb.float()).shape[1]
        assert enc(rgb.float()).dtype == torch.complex64
        with pytest.raises(ValueError):
            enc(torch.rand(1, 4, 2, 2))


def test_rgb_to_lab_known_colours_gamut_and_gradient():
    colours = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1], [0, 0, 0]], dtype=torch.float64)
    lab = rgb_to_lab(colours.view(5, 3, 1, 1)).view(5, 3)
    expect = torch.tensor([[53.24, 80.09, 67.20], [87.73, -86.18, 83.18], [32.30, 79.19, -107.86],
                           [100.0, 0, 0], [0, 0, 0]], dtype=torch.float64)
    assert (lab - expect).abs().max() < 0.02
    assert abs(torch.linalg.vector_norm(lab[2, 1:]).item() - LAB_MAX_MAGNITUDE) < 1e-3
    x = torch.rand(1, 3, 2, 2, dtype=torch.float64).clamp(0.02, 0.98).requires_grad_()
    assert torch.autograd.gradcheck(rgb_to_lab, (x,))
    g = torch.zeros(1, 3, 1, 1, dtype=torch.float64, requires_grad=True)
    rgb_to_lab(g).sum().backward()
    assert torch.isfinite(g.grad).all()


# --------------------------------------------------------------------------------- models

REFERENCE = {"type_i": dict(init="reference", omega_constraint="reference"),
             "type_e": dict(init="reference", omega_constraint="reference", prototype_scale="reference")}


_COUNTS = [("type_i", 2, 10, 24241), ("type_i", 2, 100, 47281), ("type_e", 2, 10, 23697),
           ("type_e", 2, 100, 46737), ("type_i", 3, 10, 24529), ("type_e", 3, 10, 23985)]


@pytest.mark.parametrize("name,cin,classes,count,kw",
                         [(*c, {}) for c in _COUNTS] + [(*c, REFERENCE[c[0]]) for c in _COUNTS]
                         + [("dcn", 2, 10, 68266, {}), ("real", 2, 10, 34426, {})])
def test_parameter_counts(name, cin, classes, count, kw):
    """Table 1's sizes (issue 25: the reference's too), under either settings."""
    m = components.build("complex_model", name, in_channels=cin, num_classes=classes, **kw)
    assert sum(p.numel() for p in m.parameters()) == count


def _warm(model, z):
    model.train()
    with torch.no_grad():
        model(z)  # non-trivial BN running statistics
    return model.eval()


def test_type_i_logits_invariant_to_complex_scaling():
    torch.manual_seed(0)
    z = _z(4, 2, 32, 32)
    for metric in ("euclidean", "manifold"):
        m = _warm(components.build("complex_model", "type_i", in_channels=2, metric=metric).double(), z)
        with torch.no_grad():
            y = m(z)
            for seed in range(3):
                _close(m(_s(seed) * z), y, 1e-4)
    m = _warm(components.build("complex_model", "type_i", in_channels=2, relative_eps=False).double(), z)
    with torch.no_grad():  # the paper's absolute eps: exact for phase
        _close(m(_s(5, phase_only=True) * z), m(z), 1e-4)


def test_type_e_logits_invariant_to_phase_and_batch_magnitude():
    torch.manual_seed(0)
    z = _z(4, 2, 32, 32)
    m = _warm(components.build("complex_model", "type_e", in_channels=2).double(), z)
    with torch.no_grad():
        y = m(z)
        for seed in range(3):
            _close(m(_s(seed, phase_only=True) * z), y, 1e-4)
        m.train()  # batch statistics normalise a batch-global |s| away (up to BN's eps)
        y = m(z)
        _close(m(_s(1) * z), y, 1e-3)


def test_dcn_and_real_baselines_are_not_invariant():
    torch.manual_seed(0)
    z = _z(2, 2, 32, 32)
    u = _s(0, phase_only=True)
    for name in ("dcn", "real"):
        m = components.build("complex_model", name, in_channels=2).double().eval()
        with torch.no_grad():
            assert (m(u * z) - m(z)).abs().max() > 1e-3


def test_input_size_validation():
    m = components.build("complex_model", "type_e", in_channels=2, input_size=28)
    assert m(torch.randn(2, 2, 28, 28, dtype=torch.complex64)).shape == (2, 10)
    assert m(torch.randn(2, 2, 32, 32, dtype=torch.complex64)).shape == (2, 10)  # also pools 4x4
    with pytest.raises(ValueError, match="spatial"):
        m(torch.randn(2, 2, 64, 64, dtype=torch.complex64))
    with pytest.raises(ValueError, match="complex"):
        m(torch.randn(2, 2, 28, 28))
    big = components.build("complex_model", "type_i", in_channels=1, input_size=128)  # MSTAR-sized
    assert big(torch.randn(2, 1, 128, 128, dtype=torch.complex64)).shape == (2, 10)


@pytest.mark.parametrize("ctor,kwargs,arg", [
    (ComplexConv2d, dict(in_channels=4, out_channels=6, kernel_size=3, groups=4), "groups"),
    (ComplexConv2d, dict(in_channels=4, out_channels=6, kernel_size=0), "kernel_size"),
    (GTReLU, dict(channels=4, r=-1.0), "r"),
    (DivisionLayer, dict(channels=4, kernel_size=2), "kernel_size"),
    (PrototypeDistance, dict(in_features=4, num_classes=3, metric="cos"), "metric"),
    (MagnitudeMaxPool2d, dict(kernel_size=2, padding=2), "padding"),
    (EquivariantActivation, dict(base=3), "base"),
])
def test_layer_arguments_are_validated(ctor, kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        ctor(**kwargs)


# ------------------------------------------- the authors' code where the paper is silent
# Each "reference" setting against a formula written here from issue 25's description of
# sutkarsh/cds (never its code), on the same weights as ablate's layer.

def _ref_std(kernel, fan):
    # reference: N(0, (gain / sqrt(k^2 c))^2) per part, gain 1/sqrt(2)
    return (1 / math.sqrt(2)) / math.sqrt(kernel * kernel * fan)


def _std_close(w, expect):
    """Sample std within 4 standard errors of ``expect`` (SE of a std: sigma / sqrt(2n))."""
    n = w.numel()
    got = w.detach().double().pow(2).mean().sqrt().item()  # mean 0 is known: RMS estimates sigma
    assert abs(got / expect - 1) <= 4 / math.sqrt(2 * n), (got, expect, n)


@pytest.mark.parametrize("init,fan", [("fan_in", 64 // 4), ("reference", 128 // 4), ("reference_ungrouped", 128)])
def test_conv_init_std_follows_the_formula(init, fan):
    torch.manual_seed(0)
    conv = ComplexConv2d(64, 128, 3, groups=4, init=init)
    for w in (conv.weight_real, conv.weight_imag):
        _std_close(w, _ref_std(3, fan))


# module path in the model -> (kernel, c) of the reference scheme: c = C_out / groups, except the
# 1x1 projection, which the reference initialises with C_out (no division by its 4 groups)
REF_CONVS = {
    "type_i": {"features.0": (3, 16), "features.1.conv": (3, 1), "features.3": (3, 16), "features.5": (3, 16),
               "features.7": (4, 1), "features.8": (1, 128)},
    "type_e": {"features.0": (3, 16), "features.2": (3, 16), "features.4": (3, 16), "features.6": (4, 1),
               "features.7": (1, 128)},
}


@pytest.mark.parametrize("name", ["type_i", "type_e"])
def test_reference_init_statistics_per_layer(name):
    torch.manual_seed(0)
    ref = components.build("complex_model", name, in_channels=2, init="reference")
    paper = components.build("complex_model", name, in_channels=2)
    convs = {n: m for n, m in ref.named_modules() if isinstance(m, ComplexConv2d)}
    assert set(convs) == set(REF_CONVS[name])
    for n, (k, c) in REF_CONVS[name].items():
        _std_close(torch.cat([convs[n].weight_real.flatten(), convs[n].weight_imag.flatten()]), _ref_std(k, c))
    # the paper default (fan-in) is another scale: the first EConv of 2 inputs is 2.8x wider
    first = dict(paper.named_modules())["features.0"]
    _std_close(first.weight_real, 1 / math.sqrt(2 * 9 * 2))


def _gtrelu_reference(z, c, omega, clamp):
    """|c z| exp(i w relu(arg(c z))), w = clamp(omega, 0.5, 2) (Type I) or relu(omega) (Type E)."""
    u = z * c.view(1, -1, 1, 1)
    w = omega.clamp(0.5, 2.0) if clamp else omega.clamp_min(0.0)
    phase = torch.atan2(u.imag, u.real).clamp_min(0.0) * w.view(1, -1, 1, 1)
    return u.abs() * torch.exp(1j * phase)


def test_type_i_gtrelu_reference_clamps_omega():
    torch.manual_seed(0)
    model = components.build("complex_model", "type_i", in_channels=2, omega_constraint="reference").double()
    act = model.features[2]
    assert isinstance(act, GTReLU) and act.omega_constraint == "clamp"
    with torch.no_grad():
        act.phase_scale.copy_(torch.linspace(0.2, 3.0, 16, dtype=torch.float64))
    z = _z(2, 16, 5, 5)
    c = torch.complex(act.scale.scale[0], act.scale.scale[1])
    _close(act(z), _gtrelu_reference(z, c, act.phase_scale, clamp=True), 1e-12)
    paper = GTReLU(16).double()
    paper.load_state_dict(act.state_dict())
    diff = (paper(z) - act(z)).abs().amax(dim=(0, 2, 3))
    inside = (act.phase_scale >= 0.5) & (act.phase_scale <= 2.0)
    assert diff[inside].max() < 1e-12 and diff[~inside].min() > 1e-3   # differ exactly outside [0.5, 2]


def test_type_e_equivariant_gtrelu_reference_uses_relu_omega():
    torch.manual_seed(0)
    model = components.build("complex_model", "type_e", in_channels=2, omega_constraint="reference").double()
    block = model.features[1]              # ComplexScale, E{GTReLU(r=0, no c)}
    scale, act = block[0], block[1].base
    assert isinstance(scale, ComplexScale) and act.omega_constraint == "relu"
    with torch.no_grad():
        act.phase_scale.copy_(torch.linspace(-1.0, 2.5, 16, dtype=torch.float64))
    z = _z(2, 16, 5, 5)
    c = torch.complex(scale.scale[0], scale.scale[1])
    u = z * c.view(1, -1, 1, 1)
    m = u.mean(dim=1, keepdim=True)
    m_hat = m / m.abs()
    expect = m_hat * _gtrelu_reference(u * m_hat.conj(), torch.ones(16, dtype=C128), act.phase_scale, clamp=False)
    _close(block(z), expect, 1e-10)
    paper = components.build("complex_model", "type_e", in_channels=2).double().features[1]
    paper.load_state_dict(block.state_dict())
    diff = (paper(z) - block(z)).abs().amax(dim=(0, 2, 3))
    assert diff[act.phase_scale >= 0].max() < 1e-12 and diff[act.phase_scale < 0].min() > 1e-3
    for seed in range(2):                   # relu(omega) keeps the block C-scale equivariant
        s = _s(seed)
        _close(block(s * z), s * block(z), 1e-8)


def test_reference_prototype_scale_matches_formula_and_is_8x_the_mean():
    torch.manual_seed(0)
    C, K = 128, 10
    head = PrototypeDistance(C, K, invariant=True, scale="reference").double()
    with torch.no_grad():
        head.alpha.fill_(1.7)
    f = _z(6, C)
    p = torch.complex(head.prototypes[0], head.prototypes[1])           # (C, K)
    g = f.sum(dim=1) / math.sqrt(2 * C)                                   # sum_c f / sqrt(2C)
    d = ((f[:, :, None] - p[None] * g[:, None, None]).abs() ** 2).mean(dim=1).sqrt()
    _close(head(f), -1.7 * d, 1e-12)
    mean = PrototypeDistance(C, K, invariant=True).double()
    mean.load_state_dict(head.state_dict())
    assert (mean(f) - head(f)).abs().max() > 1e-2                          # equal weights, other logits
    with torch.no_grad():                                                  # same function class: p -> 8 p
        mean.prototypes.mul_(math.sqrt(C / 2))
    assert math.sqrt(C / 2) == 8.0
    _close(mean(f), head(f), 1e-12)


def test_type_e_reference_head_equals_mean_head_with_prototypes_times_8():
    torch.manual_seed(0)
    z = _z(4, 2, 32, 32)
    ref = components.build("complex_model", "type_e", in_channels=2, prototype_scale="reference").double()
    paper = components.build("complex_model", "type_e", in_channels=2).double()
    paper.load_state_dict(ref.state_dict())
    ref.eval(), paper.eval()
    with torch.no_grad():
        assert (ref(z) - paper(z)).abs().max() > 1e-2
        paper.head.prototypes.mul_(8.0)
        _close(ref(z), paper(z), 1e-10)


def test_reference_models_keep_their_invariances():
    torch.manual_seed(0)
    z = _z(4, 2, 32, 32)
    m = _warm(components.build("complex_model", "type_i", in_channels=2, **REFERENCE["type_i"]).double(), z)
    e = _warm(components.build("complex_model", "type_e", in_channels=2, **REFERENCE["type_e"]).double(), z)
    with torch.no_grad():
        for seed in range(2):
            _close(m(_s(seed) * z), m(z), 1e-4)
            _close(e(_s(seed, phase_only=True) * z), e(z), 1e-4)


@pytest.mark.parametrize("ctor,kwargs,arg", [
    (ComplexConv2d, dict(in_channels=4, out_channels=4, kernel_size=3, init="xavier"), "init"),
    (GTReLU, dict(channels=4, omega_constraint="abs"), "omega_constraint"),
    (GTReLU, dict(channels=4, phase_scale=False, omega_constraint="clamp"), "omega_constraint"),
    (PrototypeDistance, dict(in_features=4, num_classes=3, scale="sum", invariant=True), "scale"),
    (PrototypeDistance, dict(in_features=4, num_classes=3, scale="reference"), "scale"),
])
def test_setting_arguments_are_validated(ctor, kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        ctor(**kwargs)

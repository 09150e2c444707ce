"""Layer components, interchangeable by registry name.

Importing this package registers every family:

==============  ==========================================  ===============
module          paper (shared/seeds)                        registry kinds
==============  ==========================================  ===============
fusion          000 Chebyshev Fusion Unit                   fusion
hyperbolic      001 Fully hyperbolic CNNs (+ wavelets,      coarsen, hyperbolic_net,
                    hyperbolic_vae: Sec. 4 VAE)             hyperbolic_vae
cds_models      002 Co-domain symmetric complex layers      complex_model
cds_encodings       (layers: cds, cds_invariant)            encoding
hyperconv       003 Hyper-convolutions                      conv2d, conv3d
circulant       004 CDLinear (block-circulant)              linear, dropout
==============  ==========================================  ===============
"""
from .registry import available, build, lookup, register  # noqa: F401
from . import circulant  # noqa: F401,E402
from . import circulant_extras  # noqa: F401,E402
from . import fusion  # noqa: F401,E402
from . import wavelets  # noqa: F401,E402
from . import hyperbolic  # noqa: F401,E402
from . import hyperbolic_vae  # noqa: F401,E402
from . import cds_encodings  # noqa: F401,E402
from . import cds_models  # noqa: F401,E402
from . import hyperconv  # noqa: F401,E402

__all__ = ["available", "build", "lookup", "register"]

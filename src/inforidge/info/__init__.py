"""Pure-tensor estimators: kernels, matrix-based Renyi entropy and MI (exact, and matrix-free
for large N), bootstrap ridge statistics, Layer-by-Layer metrics.

Nothing here knows about models; every function takes tensors (CPU or CUDA) or numpy arrays.

Numpy in, numpy out. When no argument is a torch tensor and an array argument is a numpy
array (or a nested list), every array in the result is a numpy array: returned arrays, the
array fields of result dataclasses (InformationEstimate, RidgeStatistics, PromptEntropy, ...)
and their properties and methods (``corrected``, ``null_mean``, ``p_value``, ``z``, ...).
The computation is the same (torch on the CPU), so the numbers equal the tensor path's.
With any tensor argument (numpy mixed with tensors too) results are tensors, on the input's
device and dtype, exactly as without numpy. One rule for scalars: a 0-d result becomes a
numpy scalar of its dtype (``np.float64``, ``np.int64``; what numpy's own reductions return,
and ``np.float64`` is a Python float); functions documented to return a Python float
(``mutual_information`` for one representation, ``check_positive_semidefinite``) still do.
``bootstrap_indices`` and ``choose_estimator`` take no array, and return a tensor and a
string.
"""

from .entropy import (
    InformationEstimate,
    entropy_from_spectrum,
    estimate_information,
    information_from_grams,
    joint_entropy,
    matrix_entropy,
    mutual_information,
    mutual_information_null,
)
from .kernels import KERNELS, gram_matrix, l2_normalize, median_bandwidth
from .layer_metrics import (
    PromptEntropy,
    curvature,
    dataset_entropy,
    dime,
    effective_rank,
    infonce,
    lidar,
    prompt_entropy,
)
from .ridge import (
    BandwidthCheck,
    ResampledInformation,
    RidgeStatistics,
    RidgeTest,
    bandwidth_check,
    bootstrap_indices,
    resampled_information,
    ridge_statistics,
    ridge_statistics_from_grams,
    ridge_test,
)
from .sequence_kernel import check_positive_semidefinite, sequence_gram
from .stochastic import (
    ESTIMATORS,
    EXACT_MAX_N,
    StochasticEntropy,
    StochasticInformationEstimate,
    choose_estimator,
    information,
    stochastic_entropy,
    stochastic_information,
    stochastic_joint_entropy,
)

__all__ = [
    "KERNELS",
    "InformationEstimate",
    "entropy_from_spectrum",
    "estimate_information",
    "gram_matrix",
    "information_from_grams",
    "joint_entropy",
    "l2_normalize",
    "matrix_entropy",
    "median_bandwidth",
    "mutual_information",
    "mutual_information_null",
    "PromptEntropy",
    "curvature",
    "dataset_entropy",
    "dime",
    "effective_rank",
    "infonce",
    "lidar",
    "prompt_entropy",
    "BandwidthCheck",
    "ResampledInformation",
    "RidgeStatistics",
    "RidgeTest",
    "bandwidth_check",
    "bootstrap_indices",
    "resampled_information",
    "ridge_statistics",
    "ridge_statistics_from_grams",
    "ridge_test",
    "check_positive_semidefinite",
    "sequence_gram",
    "ESTIMATORS",
    "EXACT_MAX_N",
    "StochasticEntropy",
    "StochasticInformationEstimate",
    "choose_estimator",
    "information",
    "stochastic_entropy",
    "stochastic_information",
    "stochastic_joint_entropy",
]

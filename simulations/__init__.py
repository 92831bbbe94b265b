"""Finite-size simulations: mixture sampling, exact convex solvers, Monte-Carlo observables."""

from simulations.data import MixtureSample, draw_cluster_direction, sample_mixture
from simulations.estimators import (
    LinearFit,
    LossTerm,
    bayes_optimal_teacher,
    fit_kd_student,
    fit_linear_classifier,
    fit_ridge_logistic,
    kd_loss_terms,
    linear_objective,
    mean_loss,
    sigmoid,
    smooth_labels,
    softplus,
)
from simulations.monte_carlo import (
    SimulationCurve,
    SimulationResult,
    simulate_student,
    simulate_student_curve,
    simulate_teacher,
    simulate_teacher_curve,
)

__all__ = [
    "LinearFit",
    "LossTerm",
    "MixtureSample",
    "SimulationCurve",
    "SimulationResult",
    "bayes_optimal_teacher",
    "draw_cluster_direction",
    "fit_kd_student",
    "fit_linear_classifier",
    "fit_ridge_logistic",
    "kd_loss_terms",
    "linear_objective",
    "mean_loss",
    "sample_mixture",
    "sigmoid",
    "simulate_student",
    "simulate_student_curve",
    "simulate_teacher",
    "simulate_teacher_curve",
    "smooth_labels",
    "softplus",
]

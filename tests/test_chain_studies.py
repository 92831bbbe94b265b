"""Chain studies (replica.chain_studies) and the chain figures (replica.chain_figures):
the grid functions against direct solves, the paired simulated gains against the theory
(3 SE), and the figure registry, rendering and CLI for the string ids."""

import csv
import json

import numpy as np
import pytest

from replica.chain import ChainParams, Stage, solve_chain
from replica.chain_studies import (
    bias_curve,
    gain_curve,
    self_distillation_chain,
    simulate_chain_points,
    weak_to_strong_curve,
    weak_to_strong_phase,
    weak_to_strong_stages,
)
from replica.cli import main
from replica.figures import FIGURES, figure_ids, figure_spec, make_figure
from replica.params import ParameterError

CHAIN_FIGURES = ("chain-a", "chain-b", "chain-c", "chain-d", "chain-e")


def test_gain_curve_is_the_difference_of_direct_solves():
    curve = gain_curve([1.0, 3.0], vary="alpha", rho=0.3, delta=0.5, flip=0.2, lam=0.1)
    for i, alpha in enumerate((1.0, 3.0)):
        for v, target in (("hard", "hard"), ("soft", "soft")):
            sol = solve_chain(alpha, 0.3, 0.5, 0.2,
                              [Stage(lam=0.1), Stage(lam=0.1, chi=1.0, target=target)])
            assert curve[f"eps1_{v}"][i] == pytest.approx(sol[1].eps_g, abs=1e-9)
            assert curve[f"gain_{v}"][i] == pytest.approx(sol[0].eps_g - sol[1].eps_g, abs=1e-9)
    with pytest.raises(ValueError, match="vary"):
        gain_curve([1.0], vary="lam")


def test_weak_to_strong_baselines_and_phase_rows():
    alphas = (1.0, 2.0, 4.0)
    curve = weak_to_strong_curve(alphas, eta0=0.3, flip=0.2, variants=("hard",))
    clean = [solve_chain(a, 0.5, 1.0, 0.0, [Stage(lam=0.1)])[0].eps_g for a in alphas]
    assert np.allclose(curve["eps_clean"], clean, atol=1e-9)
    # the sparse teacher is worse than the full model on the same noisy labels
    assert np.all(curve["eps_teacher"] > curve["eps_noisy"])
    phase = weak_to_strong_phase(alphas, (0.3, 0.6), flip=0.2)
    assert phase["gain"].shape == (2, 3) and np.all(phase["converged"] == 1.0)
    assert np.allclose(phase["gain"][0], curve["gain_hard"], atol=1e-8)  # the eta0 = 0.3 row
    recovered = (phase["eps_teacher"] - phase["eps_student"]) / (phase["eps_teacher"]
                                                                 - phase["eps_clean"])
    assert np.allclose(phase["recovered"], recovered)
    json.dumps(phase.to_dict()) and json.dumps(curve.to_dict())


def test_bias_curve_inherit_keeps_stage0_bias():
    curve = bias_curve([2.0], rho=0.3, delta=1.0, flip=0.2, K=2)
    stages = self_distillation_chain(2, "hard", lam=0.1, bias="inherit")
    sol = solve_chain(2.0, 0.3, 1.0, 0.2, stages)
    assert sol[2].b == pytest.approx(sol[0].b, abs=1e-12)
    assert curve["gain_inherit"][0] == pytest.approx(sol[0].eps_g - sol[2].eps_g, abs=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("alpha, rho, delta, flip, stages", [
    # (a) hard pseudo-labels at high SNR with class imbalance; (c) a stage after the minimum
    (2.0, 0.3, 0.25, 0.2, self_distillation_chain(1, "hard", lam=0.1)),
    (2.0, 0.5, 1.0, 0.1, self_distillation_chain(2, "hard", lam=1.0)),
    # (d) two hard stages keeping stage 0's bias; (e) weak-to-strong, soft targets
    (2.0, 0.3, 0.25, 0.2, self_distillation_chain(2, "hard", lam=0.1, bias="inherit")),
    (1.0, 0.5, 1.0, 0.2, weak_to_strong_stages(0.3, "soft", lam=0.1)),
], ids=["a-hard", "c-hard-K2", "d-inherit", "e-w2s-soft"])  # fmt: skip
def test_paired_gains_agree_with_theory(alpha, rho, delta, flip, stages):
    """The simulated gains of every stage over stage 0 (paired per seed) within 3 SE."""
    sol = solve_chain(alpha, rho, delta, flip, stages)
    sim = simulate_chain_points(ChainParams(alpha, rho, delta, flip, stages), n=300, seeds=24,
                                seed=3)  # fmt: skip
    assert sim.converged == 1.0
    for k in range(1, len(stages)):
        gain = sol[0].eps_g - sol[k].eps_g
        assert abs(sim.gain[k] - gain) < 3 * sim.gain_sem[k], (k, gain, sim.gain[k])
        assert abs(sim.eps_g[k] - sol[k].eps_g) < 3 * sim.sem[k]


def test_chain_figures_are_registered_beside_the_paper_figures():
    ids = figure_ids()
    assert ids[:12] == tuple(range(1, 13)) and set(CHAIN_FIGURES) <= set(ids)
    for key in CHAIN_FIGURES:
        spec = figure_spec(key, resolution=0.1)
        assert spec.key == key and spec.setting and len(spec.panels) == spec.layout[1]
        json.dumps(spec.to_dict())
    with pytest.raises(ParameterError, match="chain-a"):
        figure_spec("chain-z")
    assert isinstance(FIGURES["chain-e"], type(FIGURES[1]))


@pytest.mark.slow
def test_chain_figure_e_renders_with_simulations(tmp_path):
    paths = make_figure("chain-e", tmp_path, resolution=0.01,
                        simulations={"n": 60, "seeds": 2, "seed": 1})  # fmt: skip
    assert paths["failed"] == 0 and paths["diverged"] == 0
    assert paths["png"].name == "chain-e.png" and paths["png"].stat().st_size > 20_000
    rows = list(csv.DictReader(open(paths["csv"])))
    assert {r["series"] for r in rows} >= {"eps_teacher", "eps_hard", "gain_hard"}
    grid = [r for r in rows if r["series"] == "gain_hard"]
    assert len(grid) == 8 * 8  # the coarsest grid
    sims = list(csv.DictReader(open(paths["simulations"])))
    assert {r["series"] for r in sims} == {"eps_hard", "eps_soft"}
    assert all(r["n"] == "60" and float(r["sem"]) > 0 for r in sims)
    settings = json.loads(paths["json"].read_text())
    assert settings["figure"] == "chain-e" and settings["simulations"]["n"] == [60]
    assert "N = 60" in settings["caption_full"]


def test_figure_command_takes_chain_ids(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["figure", "chain-z", "--out", str(tmp_path), "--quiet"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "chain-a" in err[-1]

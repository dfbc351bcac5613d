"""Integrators of the gradient flow ``dθ/dτ = −∇L(θ)`` on the trainable parameters.

- ``gradient_descent``: ``θ_{k+1} = θ_k − lr ∇L(θ_k)`` (the paper's training), time ``τ = k·lr``;
- ``rk4``: classical fixed-step Runge–Kutta of order 4, time ``τ = k·dt``;
- ``integrate_flow``: adaptive high-order integration (SciPy ``solve_ivp``, DOP853 by
  default) with dense output.

Weight decay ``λ`` (``weight_decay``) adds the L2 penalty ``λ/2‖θ‖²`` on the trained arrays:
the flow becomes ``dθ/dτ = −∇L − λθ``. For gradient descent ``decoupled=True`` instead shrinks
``θ ← (1 − lr·λ)θ`` outside the gradient (and its momentum); without momentum the two coincide.
Heavy-ball momentum ``β`` (gradient descent only; PyTorch's SGD convention): ``b_{k+1} =
β b_k + g_k``, ``θ_{k+1} = θ_k − lr b_{k+1}`` with ``b_0 = 0`` and ``g_k`` the (penalised)
gradient. The recorded loss is the data loss ``L(θ)`` without the penalty.

Frozen parameters stay constant. ``frozen_rows`` additionally holds rows of trained arrays
fixed, e.g. ``{"embeddings": nontopic, "keys": nontopic}`` for the paper's assumption A2
(non-topic words do not move). All return a ``numeric.trajectory.Trajectory``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

import numeric
from numeric.engine import fixed_attention, unchecked_value_and_gradient
from numeric.model import Dataset, ModelSpec, check_params, integer
from numeric.trajectory import ROW_FROZEN, Trajectory

#: ``callback(step, params, loss) -> bool | None``; a true result stops the run at ``params``.
Callback = Callable[[int, dict, float], "bool | None"]


#: Smallest relative tolerance SciPy's adaptive solvers accept (they clamp smaller ones).
RTOL_MIN = 100 * np.finfo(np.float64).eps


class StalledIntegration(RuntimeError):
    """The adaptive solver exceeded its evaluation budget: typically a ReLU unit sits on its
    kink, where the flow is discontinuous and the step size collapses (sliding mode)."""


class IntegrationFailed(RuntimeError):
    """``solve_ivp`` gave up before the end (``success`` False: its step size underflowed)."""


#: The solver's own ways of not reaching the end; any other error is a bug and propagates.
SOLVER_GAVE_UP = (StalledIntegration, IntegrationFailed)


def trained_flow(params, data: Dataset, spec: ModelSpec, frozen_rows=None,
                 weight_decay: float = 0.0):
    """``(L(θ), −∇L(θ) − λθ)`` with the flow on trained arrays only, zero on frozen rows."""
    frozen_rows = _checked_rows(frozen_rows, spec, params)
    loss, grad = numeric.value_and_gradient(params, data, spec, wrt=spec.trained)
    flow = {}
    for name in spec.trained:
        f = -np.asarray(grad[name])
        if weight_decay:
            f = f - weight_decay * params[name]
        if frozen_rows and name in frozen_rows:
            f = f.copy()
            f[frozen_rows[name]] = 0.0
        flow[name] = f
    return float(loss), flow


def gradient_descent(params, data: Dataset, spec: ModelSpec, lr: float, steps: int, *,
                     record_every: int | None = None, callback: Callback | None = None,
                     progress: bool = False, desc: str | None = None,
                     frozen_rows: Mapping | None = None, weight_decay: float = 0.0,
                     decoupled: bool = False, momentum: float = 0.0) -> Trajectory:
    """Full-batch gradient descent ``θ_{k+1} = θ_k − lr ∇L(θ_k)`` for ``steps`` steps.

    The loss is recorded at every iterate (``traj.loss[k] = L(θ_k)`` at ``traj.loss_time[k]
    = k·lr``); snapshots are kept at step 0, every ``record_every`` steps (``None``: none in
    between) and at the last iterate. ``callback(k, θ_k, L(θ_k))`` is called for every iterate
    ``k = 0, …, steps`` before its update; the arrays it receives are never modified later,
    so it may keep them; if it returns true the run stops with ``θ_k`` as the last snapshot
    (early stopping). A non-finite loss raises ``FloatingPointError`` (learning rate too large).
    ``weight_decay``, ``decoupled`` and ``momentum``: see the module docstring.
    """
    lr = _positive("lr", lr)
    decay, beta = _non_negative("weight_decay", weight_decay), _momentum(momentum)
    decoupled = _flag("decoupled", decoupled)
    step = _gd_stepper(decay, decoupled, beta) if decay or beta else _plain_gd_stepper()
    return _fixed_step(params, data, spec, lr, steps, step, record_every, callback,
                       progress, desc or "gradient descent", frozen_rows)


def rk4(params, data: Dataset, spec: ModelSpec, dt: float, steps: int, *,
        record_every: int | None = None, callback: Callback | None = None,
        progress: bool = False, desc: str | None = None,
        frozen_rows: Mapping | None = None, weight_decay: float = 0.0) -> Trajectory:
    """Classical Runge–Kutta (order 4) on the gradient flow (``−λθ`` added with weight decay
    ``λ``), fixed step ``dt``. Loss, snapshots and ``callback`` as in ``gradient_descent``
    (time ``τ = k·dt``).
    """
    dt = _positive("dt", dt)
    decay = _non_negative("weight_decay", weight_decay)
    step = _rk4_stepper(decay) if decay else _rk4_step
    return _fixed_step(params, data, spec, dt, steps, step, record_every, callback,
                       progress, desc or "RK4", frozen_rows)


def integrate_flow(params, data: Dataset, spec: ModelSpec, t_end: float, *,
                   rtol: float = 1e-10, atol: float = 1e-12, method: str = "DOP853",
                   t_eval=None, frozen_rows: Mapping | None = None, progress: bool = False,
                   desc: str | None = None, max_evaluations: int | None = None,
                   stop_when: Callable[[dict], float] | None = None,
                   weight_decay: float = 0.0) -> Trajectory:
    """Solve ``dθ/dτ = −∇L(θ) − λθ`` (``λ = weight_decay``, default 0) on ``[0, t_end]`` with
    ``solve_ivp`` and dense output.

    The state is the trained arrays flattened (frozen ones constant). Snapshots at ``t_eval``
    (default: the solver's accepted steps); ``traj.loss`` holds the loss at the snapshots
    and ``traj.at(t)`` interpolates the dense output. More than ``max_evaluations``
    gradient evaluations raise ``StalledIntegration``. ``stop_when(params)`` (continuous)
    ends the run early where it crosses zero upwards, e.g. once scores have grown enough.
    """
    p0 = _checked(params, data, spec)
    t_end = _positive("t_end", t_end)
    rtol, atol = _positive("rtol", rtol), _non_negative("atol", atol)
    if rtol < RTOL_MIN:  # SciPy would raise it to this floor with only a warning
        raise ValueError(f"rtol must be at least {RTOL_MIN:.1e} (100 ε), got {rtol!r}")
    if max_evaluations is not None:
        max_evaluations = integer("max_evaluations", max_evaluations, 1)
    if t_eval is not None:
        t_eval = _times("t_eval", t_eval, t_end)
    decay = _non_negative("weight_decay", weight_decay)
    rows = _checked_rows(frozen_rows, spec, p0)
    names = spec.trained
    shapes = [p0[n].shape for n in names]
    sizes = [int(np.prod(s)) for s in shapes]
    split = np.cumsum(sizes)[:-1]

    def unflatten(y):
        p = dict(p0)
        for n, s, part in zip(names, shapes, np.split(y, split)):
            p[n] = part.reshape(s).astype(spec.float)
        return p

    bar = _progress_bar(total=t_end, disable=not progress, desc=desc or method, unit="τ")

    evaluations = 0

    def rhs(t, y):
        nonlocal evaluations
        evaluations += 1
        if max_evaluations is not None and evaluations > max_evaluations:
            raise StalledIntegration(f"{method} stalled at τ = {t:.6g} of {t_end} after "
                                     f"{max_evaluations} gradient evaluations")
        bar.update(max(0.0, min(t, t_end) - bar.n))
        _, flow = trained_flow(unflatten(y), data, spec, rows, decay)
        return np.concatenate([flow[n].ravel() for n in names]) if names else y

    y0 = np.concatenate([p0[n].ravel() for n in names]).astype(np.float64) if names \
        else np.zeros(0)
    events = None
    if stop_when is not None:
        def event(t, y):
            return stop_when(unflatten(y))
        event.terminal, event.direction = True, 1.0
        events = [event]
    # imported here: scipy.integrate takes ~0.3 s to load, and the training loops of
    # reproduce's worker processes (gradient descent) never need it
    from scipy.integrate import solve_ivp
    try:
        sol = solve_ivp(rhs, (0.0, t_end), y0, method=method, t_eval=t_eval,
                        dense_output=True, rtol=rtol, atol=atol, events=events)
    finally:
        bar.close()
    if not sol.success:
        raise IntegrationFailed(f"solve_ivp ({method}) failed at τ = {sol.t[-1]}: "
                                f"{sol.message}")
    snaps = [unflatten(sol.y[:, i]) for i in range(len(sol.t))]
    losses = np.array([numeric.loss(p, data, spec) for p in snaps])
    return Trajectory(data, spec, sol.t, _stack(snaps, spec), losses, sol.t.copy(),
                      dense=lambda t: unflatten(sol.sol(t)), frozen_rows=rows or {})


def _plain_gd_stepper():
    """``_gd_step`` for one run; a run that trains neither keys nor query computes their
    scores and attention once, at its start (``fixed_attention``), and reuses them."""
    start: dict = {}

    def step(p, data, spec, h, rows):
        if not start:   # the first call gets _fixed_step's validated start
            start["attention"] = fixed_attention(p, data, spec)
        return _gd_step(p, data, spec, h, rows, start["attention"])

    return step


def _gd_step(p, data, spec, h, rows, attention=None):
    """``θ + h·(−∇L)`` on the trained arrays, computed inside the gradient arrays the engine
    has just made (bitwise the same as ``p + h * (−g)``, without two full-size temporaries
    per array: a (W, d) update is memory-bound); frozen rows keep their values."""
    # p is _fixed_step's validated start or an iterate this function made
    loss, grad = unchecked_value_and_gradient(p, data, spec, frozenset(spec.trained),
                                              attention)
    new, seen = dict(p), set()
    for name, g in grad.items():
        if not (isinstance(g, np.ndarray) and g.flags.writeable and g.base is None
                and id(g) not in seen):
            g = np.array(g)  # never write into an array someone else may hold
        seen.add(id(g))
        np.multiply(g, -h, out=g)
        np.add(p[name], g, out=g)
        if rows and name in rows:
            g[rows[name]] = p[name][rows[name]]
        new[name] = g
    return float(loss), new


def _rk4_step(p, data, spec, h, rows):
    def shifted(f, c):
        return {n: p[n] + c * f[n] if n in f else p[n] for n in p}

    loss, k1 = trained_flow(p, data, spec, rows)
    _, k2 = trained_flow(shifted(k1, h / 2), data, spec, rows)
    _, k3 = trained_flow(shifted(k2, h / 2), data, spec, rows)
    _, k4 = trained_flow(shifted(k3, h), data, spec, rows)
    return loss, {n: p[n] + h / 6 * (k1[n] + 2 * k2[n] + 2 * k3[n] + k4[n]) if n in k1 else p[n]
                  for n in p}


def _gd_stepper(decay: float, decoupled: bool, beta: float):
    """One step of gradient descent: ``b ← βb + g`` (``g = ∇L + λθ``, or ``∇L`` when the decay
    is decoupled), ``θ ← θ − h b`` (and ``− hλθ`` when decoupled). The momentum buffer lives
    in the closure: one stepper per run."""
    coupled = 0.0 if decoupled else decay
    buffer: dict[str, np.ndarray] = {}

    def step(p, data, spec, h, rows):
        loss, f = trained_flow(p, data, spec, rows, coupled)
        if beta:
            for n in f:
                f[n] = beta * buffer[n] + f[n] if n in buffer else f[n]
                buffer[n] = f[n]
        if decoupled and decay:
            f = {n: f[n] - decay * _unfrozen(p[n], n, rows) for n in f}
        return loss, {n: p[n] + h * f[n] if n in f else p[n] for n in p}

    return step


def _unfrozen(x, name, rows):
    """``x`` with its frozen rows zeroed (frozen rows do not decay)."""
    if rows and name in rows:
        x = x.copy()
        x[rows[name]] = 0.0
    return x


def _rk4_stepper(decay: float):
    def step(p, data, spec, h, rows):
        def shifted(f, c):
            return {n: p[n] + c * f[n] if n in f else p[n] for n in p}

        loss, k1 = trained_flow(p, data, spec, rows, decay)
        _, k2 = trained_flow(shifted(k1, h / 2), data, spec, rows, decay)
        _, k3 = trained_flow(shifted(k2, h / 2), data, spec, rows, decay)
        _, k4 = trained_flow(shifted(k3, h), data, spec, rows, decay)
        return loss, {n: p[n] + h / 6 * (k1[n] + 2 * k2[n] + 2 * k3[n] + k4[n])
                      if n in k1 else p[n] for n in p}

    return step


def _fixed_step(params, data, spec, h, steps, step, record_every, callback, progress, desc,
                frozen_rows) -> Trajectory:
    p = _checked(params, data, spec)
    rows = _checked_rows(frozen_rows, spec, p)
    steps = integer("steps", steps, 0)
    if record_every is not None:
        record_every = integer("record_every", record_every, 1)
    times, snaps, losses = [0.0], [p], []
    every = max(1, steps // 200)
    with _progress_bar(total=steps, disable=not progress, desc=desc) as bar:
        for k in range(steps + 1):
            if k < steps:
                loss, new = step(p, data, spec, h, rows)
            else:
                loss, new = numeric.loss(p, data, spec), None
            if not np.isfinite(loss):
                raise FloatingPointError(f"{desc}: non-finite loss {loss} at step {k} "
                                         f"(τ = {k * h}); the step size {h} is too large")
            losses.append(float(loss))
            if (callback is not None and callback(k, p, float(loss))) or new is None:
                break
            p = new
            if record_every and (k + 1) % record_every == 0 and k + 1 < steps:
                times.append((k + 1) * h)
                snaps.append(p)
            if k % every == 0:
                bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
            bar.update(1)
    last = len(losses) - 1
    if times[-1] != last * h:
        times.append(last * h)
        snaps.append(p)
    return Trajectory(data, spec, np.array(times), _stack(snaps, spec), np.array(losses),
                      h * np.arange(len(losses)), frozen_rows=rows or {})


def _stack(snaps, spec) -> dict[str, np.ndarray]:
    return {n: np.stack([s[n] for s in snaps]) for n in spec.param_names}


def _checked(params, data, spec) -> dict[str, np.ndarray]:
    if not isinstance(data, Dataset):
        raise ValueError(f"data must be a numeric.Dataset, got {type(data).__name__}")
    return {n: np.array(x) for n, x in check_params(params, spec, data).items()}


def _checked_rows(frozen_rows, spec, params):
    if not frozen_rows:
        return None
    rows = {}
    for name, idx in frozen_rows.items():
        if name not in ROW_FROZEN or name not in spec.trained:
            raise ValueError(f"frozen_rows names {name!r}: only rows (words) of trained "
                             f"{ROW_FROZEN} can be held fixed; trained: {spec.trained}")
        idx = np.asarray(idx)
        if idx.dtype.kind not in "iu" or idx.ndim != 1:
            raise ValueError(f"frozen_rows[{name!r}] must be a 1-D integer array of rows")
        n = params[name].shape[0]
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(f"frozen_rows[{name!r}] holds a row outside [0, {n})")
        rows[name] = idx
    return rows


def _positive(name, x) -> float:
    """``x`` as a float if it is a real number (not a string or bool), finite and > 0."""
    what = f"{name} must be a positive finite number"
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer,
                                                              np.floating)):
        raise ValueError(f"{what}, got {x!r} ({type(x).__name__})")
    if not np.isfinite(x) or x <= 0:
        raise ValueError(f"{what}, got {x!r}")
    return float(x)


def _times(name, t, t_end: float) -> np.ndarray:
    """Output times: a non-empty, finite, strictly increasing 1-D array in ``[0, t_end]``."""
    try:
        t = np.asarray(t, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a 1-D array of numbers, got {t!r}") from None
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {t.shape}")
    if not np.isfinite(t).all():
        raise ValueError(f"{name}[{int(np.flatnonzero(~np.isfinite(t))[0])}] is not finite")
    if t[0] < 0 or t[-1] > t_end or (np.diff(t) <= 0).any():
        raise ValueError(f"{name} must increase strictly inside [0, t_end = {t_end}]")
    return t


def _non_negative(name, x) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a non-negative finite number, got {x!r}")
    x = float(x)
    if not np.isfinite(x) or x < 0:
        raise ValueError(f"{name} must be a non-negative finite number, got {x}")
    return x


def _momentum(beta) -> float:
    beta = _non_negative("momentum", beta)
    if beta >= 1:
        raise ValueError(f"momentum must lie in [0, 1), got {beta}")
    return beta


def _flag(name, x) -> bool:
    if not isinstance(x, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {x!r}")
    return bool(x)


def _progress_bar(**options):
    """A tqdm bar, imported when a run starts: importing numeric stays light."""
    from tqdm.auto import tqdm
    return tqdm(**options)

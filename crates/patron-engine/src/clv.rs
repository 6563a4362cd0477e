//! Customer-base models for non-contractual retail: BG/NBD (Fader, Hardie & Lee 2005) and
//! Pareto/NBD (Schmittlein, Morrison & Colombo 1987) for the number of future purchases and
//! the probability a customer is still active, and Gamma-Gamma (Fader, Hardie & Lee 2005,
//! "RFM and CLV") for the value of a purchase. Each is fitted by maximum likelihood with
//! Nelder–Mead on log parameters, from per-customer summaries in one time unit (weeks, say).

use serde::Serialize;

/// What the models need of one customer, over a calibration period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Repeat purchases: purchase occasions after the first.
    pub x: f64,
    /// Time of the last purchase, from the first.
    pub t_x: f64,
    /// Length of observation, from the first purchase to the end of calibration.
    pub t: f64,
    /// Mean value of the repeat purchases (0 without any).
    pub monetary: f64,
}

/// One purchase occasion's share: a customer (index), a day number and an amount.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Purchase {
    /// Customer index.
    pub customer: u32,
    /// Day number (any epoch).
    pub day: i32,
    /// Amount spent.
    pub amount: f64,
}

/// Per-customer summaries of the purchases on or before `end_day`, with times in units of
/// `unit_days` days. Purchases on the same day are one occasion (amounts summed), as in the
/// papers. `None` for customers with no purchase by then.
pub fn summarize(
    purchases: &[Purchase],
    customers: usize,
    end_day: i32,
    unit_days: f64,
) -> Vec<Option<Summary>> {
    let mut days: Vec<Vec<(i32, f64)>> = vec![Vec::new(); customers];
    for p in purchases.iter().filter(|p| p.day <= end_day) {
        days[p.customer as usize].push((p.day, p.amount));
    }
    days.into_iter()
        .map(|mut d| {
            if d.is_empty() {
                return None;
            }
            d.sort_by_key(|(day, _)| *day);
            let mut occasions: Vec<(i32, f64)> = Vec::new();
            for (day, amount) in d {
                match occasions.last_mut() {
                    Some(last) if last.0 == day => last.1 += amount,
                    _ => occasions.push((day, amount)),
                }
            }
            let first = occasions[0].0;
            let last = occasions[occasions.len() - 1].0;
            let repeat = &occasions[1..];
            Some(Summary {
                x: repeat.len() as f64,
                t_x: f64::from(last - first) / unit_days,
                t: f64::from(end_day - first) / unit_days,
                monetary: if repeat.is_empty() {
                    0.0
                } else {
                    repeat.iter().map(|o| o.1).sum::<f64>() / repeat.len() as f64
                },
            })
        })
        .collect()
}

/// Purchase occasions (distinct days) per customer after `start_day`, up to `end_day`.
pub fn occasions_between(
    purchases: &[Purchase],
    customers: usize,
    start_day: i32,
    end_day: i32,
) -> Vec<u32> {
    let mut days: Vec<Vec<i32>> = vec![Vec::new(); customers];
    for p in purchases
        .iter()
        .filter(|p| p.day > start_day && p.day <= end_day)
    {
        days[p.customer as usize].push(p.day);
    }
    days.into_iter()
        .map(|mut d| {
            d.sort_unstable();
            d.dedup();
            d.len() as u32
        })
        .collect()
}

/// A fitted model's parameters, log-likelihood and standard errors.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fit {
    /// Parameter names, in the order of `params`.
    pub names: Vec<&'static str>,
    /// Maximum-likelihood estimates.
    pub params: Vec<f64>,
    /// Standard errors from the observed information (numerical Hessian); `None` where the
    /// Hessian is not invertible.
    pub std_errors: Vec<Option<f64>>,
    /// Log-likelihood at the estimates.
    pub log_likelihood: f64,
    /// Customers the model was fitted on.
    pub customers: usize,
    /// Nelder–Mead iterations used.
    pub iterations: usize,
    /// Likelihood evaluations used.
    pub evaluations: usize,
}

/// BG/NBD log-likelihood of one customer; parameters `[r, alpha, a, b]`.
pub fn bgnbd_ll(p: &[f64], s: &Summary) -> f64 {
    let (r, alpha, a, b) = (p[0], p[1], p[2], p[3]);
    let x = s.x;
    let a1 = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
    let a2 = ln_gamma(a + b) + ln_gamma(b + x) - ln_gamma(b) - ln_gamma(a + b + x);
    let a3 = -(r + x) * (alpha + s.t).ln();
    if x > 0.0 {
        let a4 = a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + s.t_x).ln();
        a1 + a2 + log_add(a3, a4)
    } else {
        a1 + a2 + a3
    }
}

/// Pareto/NBD log-likelihood of one customer; parameters `[r, alpha, s, beta]`.
pub fn pareto_ll(p: &[f64], c: &Summary) -> f64 {
    let (r, alpha, s, beta) = (p[0], p[1], p[2], p[3]);
    let x = c.x;
    let rsx = r + s + x;
    let head = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln() + s * beta.ln();
    let survive = -(r + x) * (alpha + c.t).ln() - s * (beta + c.t).ln();
    // A0 of Fader & Hardie's note, with the hypergeometric argument kept below one by
    // taking the larger of alpha and beta.
    let (big, b2) = if alpha >= beta {
        (alpha, s + 1.0)
    } else {
        (beta, r + x)
    };
    let z = |t: f64| (alpha - beta).abs() / (big + t);
    let term = |t: f64| ln_hyp2f1(rsx, b2, rsx + 1.0, z(t)) - rsx * (big + t).ln();
    let a0 = log_sub(term(c.t_x), term(c.t));
    head + log_add(survive, (s / rsx).ln() + a0)
}

/// Gamma-Gamma log-likelihood of one repeat customer's mean spend; parameters
/// `[p, q, gamma]`.
pub fn gamma_gamma_ll(params: &[f64], s: &Summary) -> f64 {
    let (p, q, g) = (params[0], params[1], params[2]);
    let (x, m) = (s.x, s.monetary);
    ln_gamma(p * x + q) - ln_gamma(p * x) - ln_gamma(q)
        + q * g.ln()
        + (p * x - 1.0) * m.ln()
        + p * x * x.ln()
        - (p * x + q) * (g + x * m).ln()
}

/// Fits BG/NBD to every customer.
pub fn fit_bgnbd(customers: &[Summary]) -> Fit {
    fit(
        &["r", "alpha", "a", "b"],
        &[1.0, 1.0, 1.0, 1.0],
        &without_monetary(customers),
        bgnbd_ll,
        Some(bgnbd_total),
    )
}

/// The summaries without their spend, which the purchase models do not use (so that
/// customers differing only in spend share one likelihood term).
fn without_monetary(customers: &[Summary]) -> Vec<Summary> {
    customers
        .iter()
        .map(|c| Summary {
            monetary: 0.0,
            ..*c
        })
        .collect()
}

/// Fits Pareto/NBD to every customer.
pub fn fit_pareto(customers: &[Summary]) -> Fit {
    fit(
        &["r", "alpha", "s", "beta"],
        &[1.0, 1.0, 1.0, 1.0],
        &without_monetary(customers),
        pareto_ll,
        None,
    )
}

/// Fits Gamma-Gamma to the customers with at least one repeat purchase of positive value.
pub fn fit_gamma_gamma(customers: &[Summary]) -> Fit {
    let repeat: Vec<Summary> = customers
        .iter()
        .filter(|c| c.x > 0.0 && c.monetary > 0.0)
        .copied()
        .collect();
    fit(
        &["p", "q", "gamma"],
        &[1.0, 1.0, 1.0],
        &repeat,
        gamma_gamma_ll,
        Some(gamma_gamma_total),
    )
}

/// A function's value and gradient.
type ValueAndGradient = (f64, Vec<f64>);

/// The total log-likelihood of weighted summaries and its gradient in the parameters.
type Gradient = fn(&[f64], &[(Summary, f64)]) -> ValueAndGradient;

fn fit(
    names: &[&'static str],
    start: &[f64],
    customers: &[Summary],
    ll: fn(&[f64], &Summary) -> f64,
    gradient: Option<Gradient>,
) -> Fit {
    // Customers with the same summary contribute the same likelihood: each distinct one is
    // evaluated once, weighted by how many share it (whole-day data repeats a lot).
    let mut distinct: std::collections::HashMap<[u64; 4], (Summary, f64)> = Default::default();
    for c in customers {
        let key = [c.x, c.t_x, c.t, c.monetary].map(f64::to_bits);
        distinct.entry(key).or_insert((*c, 0.0)).1 += 1.0;
    }
    let mut weighted: Vec<(Summary, f64)> = distinct.into_values().collect();
    weighted.sort_by(|a, b| {
        [a.0.x, a.0.t_x, a.0.t, a.0.monetary]
            .partial_cmp(&[b.0.x, b.0.t_x, b.0.t, b.0.monetary])
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let total = |p: &[f64]| {
        use rayon::prelude::*;
        weighted.par_iter().map(|(c, w)| w * ll(p, c)).sum::<f64>()
    };
    let evaluations = std::sync::atomic::AtomicUsize::new(0);
    let count = || evaluations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let start: Vec<f64> = start.iter().map(|v| v.ln()).collect();
    // Quasi-Newton with the analytic gradient where there is one (a few dozen evaluations);
    // otherwise, or if it fails, Nelder–Mead, restarted from its own optimum in case the
    // simplex collapsed early. Both work on log parameters, which keeps them positive.
    let quasi_newton = gradient.and_then(|grad| {
        let objective = |logp: &[f64]| {
            count();
            let p: Vec<f64> = logp.iter().map(|v| v.exp()).collect();
            let (v, g) = grad(&p, &weighted);
            (-v, g.iter().zip(&p).map(|(g, p)| -g * p).collect())
        };
        bfgs(&objective, &start, 500)
    });
    let (x, iterations) = match quasi_newton {
        Some(found) => found,
        None => {
            let objective = |logp: &[f64]| {
                count();
                let p: Vec<f64> = logp.iter().map(|v| v.exp()).collect();
                let v = -total(&p);
                if v.is_finite() {
                    v
                } else {
                    f64::MAX
                }
            };
            let (mut x, mut iterations) = (start, 0);
            for _ in 0..3 {
                let (best, n) = nelder_mead(&objective, &x, 1e-10, 5_000);
                x = best;
                iterations += n;
            }
            (x, iterations)
        }
    };
    let params: Vec<f64> = x.iter().map(|v| v.exp()).collect();
    let std_errors = match gradient {
        Some(grad) => standard_errors_from_gradient(&|p: &[f64]| grad(p, &weighted).1, &params),
        None => standard_errors(&|p: &[f64]| -total(p), &params),
    };
    Fit {
        names: names.to_vec(),
        log_likelihood: total(&params),
        params,
        std_errors,
        customers: customers.len(),
        iterations,
        evaluations: evaluations.into_inner(),
    }
}

/// BG/NBD's total log-likelihood and gradient over weighted summaries. The gamma-function
/// terms depend on the repeat count only, so they are computed once per count.
fn bgnbd_total(p: &[f64], weighted: &[(Summary, f64)]) -> (f64, Vec<f64>) {
    use rayon::prelude::*;
    let (r, alpha, a, b) = (p[0], p[1], p[2], p[3]);
    let max_x = weighted
        .iter()
        .map(|(s, _)| s.x as usize)
        .max()
        .unwrap_or(0);
    // Per repeat count x: [lnΓ(r+x) − lnΓ(r) + lnΓ(b+x) − lnΓ(a+b+x), ψ(r+x), ψ(b+x),
    // ψ(a+b+x), ln(b+x−1)].
    let per_x: Vec<[f64; 5]> = (0..=max_x)
        .map(|x| {
            let x = x as f64;
            [
                ln_gamma(r + x) - ln_gamma(r) + ln_gamma(b + x) - ln_gamma(a + b + x),
                digamma(r + x),
                digamma(b + x),
                digamma(a + b + x),
                if x > 0.0 { (b + x - 1.0).ln() } else { 0.0 },
            ]
        })
        .collect();
    let constant = r * alpha.ln() + ln_gamma(a + b) - ln_gamma(b);
    let (psi_r, psi_ab, psi_b, ln_a) = (digamma(r), digamma(a + b), digamma(b), a.ln());
    let (ll, g) = weighted
        .par_iter()
        .map(|(s, w)| {
            let c = &per_x[s.x as usize];
            let (lat, latx) = ((alpha + s.t).ln(), (alpha + s.t_x).ln());
            let a3 = -(r + s.x) * lat;
            let (mix, w3) = if s.x > 0.0 {
                let a4 = ln_a - c[4] - (r + s.x) * latx;
                let m = log_add(a3, a4);
                (m, (a3 - m).exp())
            } else {
                (a3, 1.0)
            };
            let w4 = 1.0 - w3;
            let ll = constant + c[0] + mix;
            let dr = c[1] - psi_r + alpha.ln() - w3 * lat - w4 * latx;
            let dalpha =
                r / alpha - w3 * (r + s.x) / (alpha + s.t) - w4 * (r + s.x) / (alpha + s.t_x);
            let da = psi_ab - c[3] + if s.x > 0.0 { w4 / a } else { 0.0 };
            let db =
                psi_ab + c[2] - psi_b - c[3] - if s.x > 0.0 { w4 / (b + s.x - 1.0) } else { 0.0 };
            (w * ll, [w * dr, w * dalpha, w * da, w * db])
        })
        .reduce(
            || (0.0, [0.0; 4]),
            |(l1, g1), (l2, g2)| (l1 + l2, std::array::from_fn(|i| g1[i] + g2[i])),
        );
    (ll, g.to_vec())
}

/// Gamma-Gamma's total log-likelihood and gradient over weighted repeat customers.
fn gamma_gamma_total(params: &[f64], weighted: &[(Summary, f64)]) -> (f64, Vec<f64>) {
    use rayon::prelude::*;
    let (p, q, g) = (params[0], params[1], params[2]);
    let max_x = weighted
        .iter()
        .map(|(s, _)| s.x as usize)
        .max()
        .unwrap_or(0);
    // Per repeat count x: [lnΓ(px+q) − lnΓ(px), ψ(px+q), ψ(px), ln x].
    let per_x: Vec<[f64; 4]> = (0..=max_x)
        .map(|x| {
            let px = p * x as f64;
            if x == 0 {
                return [0.0; 4];
            }
            [
                ln_gamma(px + q) - ln_gamma(px),
                digamma(px + q),
                digamma(px),
                (x as f64).ln(),
            ]
        })
        .collect();
    let (lg_q, psi_q, ln_g) = (ln_gamma(q), digamma(q), g.ln());
    let (ll, grad) = weighted
        .par_iter()
        .map(|(s, w)| {
            let c = &per_x[s.x as usize];
            let (x, m) = (s.x, s.monetary);
            let px = p * x;
            let (ln_m, ln_gxm) = (m.ln(), (g + x * m).ln());
            let ll = c[0] - lg_q + q * ln_g + (px - 1.0) * ln_m + px * c[3] - (px + q) * ln_gxm;
            let dp = x * (c[1] - c[2] + ln_m + c[3] - ln_gxm);
            let dq = c[1] - psi_q + ln_g - ln_gxm;
            let dg = q / g - (px + q) / (g + x * m);
            (w * ll, [w * dp, w * dq, w * dg])
        })
        .reduce(
            || (0.0, [0.0; 3]),
            |(l1, g1), (l2, g2)| (l1 + l2, std::array::from_fn(|i| g1[i] + g2[i])),
        );
    (ll, grad.to_vec())
}

/// Minimizes `f` (value and gradient) by BFGS with a backtracking line search; returns the
/// point and the iterations, or `None` if it did not converge to a finite point.
fn bfgs(
    f: &dyn Fn(&[f64]) -> ValueAndGradient,
    start: &[f64],
    max_iter: usize,
) -> Option<(Vec<f64>, usize)> {
    let n = start.len();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut h: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| f64::from(u8::from(i == j))).collect())
        .collect();
    let mut x = start.to_vec();
    let (mut fx, mut g) = f(&x);
    if !fx.is_finite() {
        return None;
    }
    // Gradients scale with the number of customers; so does the tolerance.
    let small = |g: &[f64], fx: f64, k: f64| g.iter().all(|v| v.abs() < k * fx.abs().max(1.0));
    for iter in 0..max_iter {
        if small(&g, fx, 1e-9) {
            return Some((x, iter));
        }
        let mut d: Vec<f64> = (0..n).map(|i| -dot(&h[i], &g)).collect();
        if dot(&g, &d) >= 0.0 {
            // Not a descent direction: restart from steepest descent.
            h = (0..n)
                .map(|i| (0..n).map(|j| f64::from(u8::from(i == j))).collect())
                .collect();
            d = g.iter().map(|v| -v).collect();
        }
        // At most a factor of e per parameter per iteration: far from the optimum the
        // likelihood of extreme parameters loses all precision, and a long first step
        // would land there.
        let longest = d.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        if longest > 1.0 {
            d.iter_mut().for_each(|v| *v /= longest);
        }
        let slope = dot(&g, &d);
        let mut step = 1.0;
        let (xn, fxn, gn) = loop {
            let xn: Vec<f64> = x.iter().zip(&d).map(|(x, d)| x + step * d).collect();
            let (fxn, gn) = f(&xn);
            if fxn.is_finite() && fxn <= fx + 1e-4 * step * slope {
                break (xn, fxn, gn);
            }
            step *= 0.5;
            if step < 1e-14 {
                // No further decrease along any step: converged as far as numbers allow.
                return small(&g, fx, 1e-6).then_some((x, iter));
            }
        };
        let s: Vec<f64> = xn.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = gn.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 {
            let hy: Vec<f64> = (0..n).map(|i| dot(&h[i], &y)).collect();
            let yhy = dot(&y, &hy);
            for i in 0..n {
                for j in 0..n {
                    h[i][j] +=
                        (sy + yhy) * s[i] * s[j] / (sy * sy) - (hy[i] * s[j] + s[i] * hy[j]) / sy;
                }
            }
        }
        let converged = (fx - fxn).abs() <= 1e-13 * fx.abs().max(1.0);
        x = xn;
        fx = fxn;
        g = gn;
        if converged && small(&g, fx, 1e-7) {
            return Some((x, iter + 1));
        }
    }
    None
}

/// Standard errors from the inverse of the Hessian of −LL, by central differences of the
/// analytic gradient of LL at `p`.
fn standard_errors_from_gradient(grad: &dyn Fn(&[f64]) -> Vec<f64>, p: &[f64]) -> Vec<Option<f64>> {
    let n = p.len();
    let mut hess = vec![vec![0.0; n]; n];
    for j in 0..n {
        let h = 1e-5 * p[j].abs().max(1e-3);
        let at = |sign: f64| {
            let mut q = p.to_vec();
            q[j] += sign * h;
            grad(&q)
        };
        let (up, down) = (at(1.0), at(-1.0));
        for i in 0..n {
            hess[i][j] = -(up[i] - down[i]) / (2.0 * h);
        }
    }
    // Symmetric by construction in exact arithmetic; average the two estimates.
    let symmetric = (0..n)
        .map(|i| (0..n).map(|j| 0.5 * (hess[i][j] + hess[j][i])).collect())
        .collect();
    inverse_diagonal_roots(symmetric)
}

/// BG/NBD: expected purchases in the next `t` units of a customer with summary `s`.
pub fn bgnbd_expected(p: &[f64], s: &Summary, t: f64) -> f64 {
    let (r, alpha, a, b) = (p[0], p[1], p[2], p[3]);
    let x = s.x;
    let z = t / (alpha + s.t + t);
    let hyp = ln_hyp2f1(r + x, b + x, a + b + x - 1.0, z).exp();
    let first = (a + b + x - 1.0) / (a - 1.0);
    let second = 1.0 - ((alpha + s.t) / (alpha + s.t + t)).powf(r + x) * hyp;
    first * second * bgnbd_alive(p, s)
}

/// BG/NBD: the probability a customer with summary `s` is still active.
pub fn bgnbd_alive(p: &[f64], s: &Summary) -> f64 {
    let (r, alpha, a, b) = (p[0], p[1], p[2], p[3]);
    if s.x == 0.0 {
        return 1.0;
    }
    let odds = (a / (b + s.x - 1.0)) * ((alpha + s.t) / (alpha + s.t_x)).powf(r + s.x);
    1.0 / (1.0 + odds)
}

/// Pareto/NBD: the probability a customer with summary `c` is still active (the no-death
/// term of the likelihood over the whole likelihood).
pub fn pareto_alive(p: &[f64], c: &Summary) -> f64 {
    let (r, alpha, s, beta) = (p[0], p[1], p[2], p[3]);
    let head = ln_gamma(r + c.x) - ln_gamma(r) + r * alpha.ln() + s * beta.ln();
    let survive = -(r + c.x) * (alpha + c.t).ln() - s * (beta + c.t).ln();
    (head + survive - pareto_ll(p, c)).exp().min(1.0)
}

/// Pareto/NBD: expected purchases in the next `t` units of a customer with summary `c`
/// (Schmittlein, Morrison & Colombo 1987; the logarithmic limit at s = 1).
pub fn pareto_expected(p: &[f64], c: &Summary, t: f64) -> f64 {
    let (r, alpha, s, beta) = (p[0], p[1], p[2], p[3]);
    let rate = (r + c.x) * (beta + c.t) / (alpha + c.t);
    let ratio = (beta + c.t) / (beta + c.t + t);
    let lifetime = if (s - 1.0).abs() < 1e-6 {
        -ratio.ln()
    } else {
        (1.0 - ratio.powf(s - 1.0)) / (s - 1.0)
    };
    rate * lifetime * pareto_alive(p, c)
}

/// A fitted purchase model: what forecasts are made from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PurchaseModel<'a> {
    /// BG/NBD parameters `[r, alpha, a, b]`.
    BgNbd(&'a [f64]),
    /// Pareto/NBD parameters `[r, alpha, s, beta]`.
    ParetoNbd(&'a [f64]),
}

impl PurchaseModel<'_> {
    /// Expected purchases in the next `t` units.
    pub fn expected(self, s: &Summary, t: f64) -> f64 {
        match self {
            PurchaseModel::BgNbd(p) => bgnbd_expected(p, s, t),
            PurchaseModel::ParetoNbd(p) => pareto_expected(p, s, t),
        }
    }

    /// The probability the customer is still active.
    pub fn alive(self, s: &Summary) -> f64 {
        match self {
            PurchaseModel::BgNbd(p) => bgnbd_alive(p, s),
            PurchaseModel::ParetoNbd(p) => pareto_alive(p, s),
        }
    }
}

/// Gamma-Gamma: the expected value of a customer's future purchases.
pub fn gamma_gamma_spend(params: &[f64], s: &Summary) -> f64 {
    let (p, q, g) = (params[0], params[1], params[2]);
    let weight = p * s.x / (p * s.x + q - 1.0);
    let population = p * g / (q - 1.0);
    (1.0 - weight) * population + weight * s.monetary
}

/// A customer's forecast from fitted BG/NBD and Gamma-Gamma models.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Forecast {
    /// Expected purchase occasions within the horizon.
    pub expected_purchases: f64,
    /// Probability the customer is still active.
    pub p_alive: f64,
    /// Expected value of the purchases over the value periods, discounted.
    pub value: f64,
}

/// How far forecasts look, in the models' time unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Horizon {
    /// The window of `expected_purchases`.
    pub purchases: f64,
    /// Length of one value period (a month, say).
    pub period: f64,
    /// Number of value periods (twelve months for a 12-month CLV).
    pub periods: u32,
    /// Discount rate per value period.
    pub discount: f64,
}

/// Forecasts one customer: the purchase model's expected purchases and P(alive) and, per
/// value period, the purchases expected in it times Gamma-Gamma's expected spend, discounted
/// to today.
pub fn forecast(
    model: PurchaseModel<'_>,
    gamma_gamma: &[f64],
    s: &Summary,
    h: Horizon,
) -> Forecast {
    let spend = gamma_gamma_spend(gamma_gamma, s);
    let mut value = 0.0;
    let mut before = 0.0;
    for k in 1..=h.periods {
        let by_then = model.expected(s, h.period * f64::from(k));
        value += (by_then - before) * spend / (1.0 + h.discount).powi(k as i32);
        before = by_then;
    }
    Forecast {
        expected_purchases: model.expected(s, h.purchases),
        p_alive: model.alive(s),
        value,
    }
}

/// The digamma function ψ(x) = d ln Γ(x) / dx for x > 0 (recurrence up to 10, then the
/// asymptotic series).
pub fn digamma(mut x: f64) -> f64 {
    let mut result = 0.0;
    while x < 10.0 {
        result -= 1.0 / x;
        x += 1.0;
    }
    let f = 1.0 / (x * x);
    result + x.ln()
        - 0.5 / x
        - f * (1.0 / 12.0 - f * (1.0 / 120.0 - f * (1.0 / 252.0 - f * (1.0 / 240.0 - f / 132.0))))
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, accurate to about 1e-15).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1−x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = C[0];
    for (i, c) in C.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// ln ₂F₁(a, b; c; z) for 0 ≤ z < 1 and positive parameters, by its power series summed in
/// scaled form (terms are positive, so there is no cancellation).
pub fn ln_hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let (mut term, mut sum) = (1.0f64, 1.0f64);
    let mut k = 0.0;
    while k < 100_000.0 {
        term *= (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z;
        sum += term;
        if term < sum * 1e-16 {
            break;
        }
        k += 1.0;
    }
    sum.ln()
}

/// ln(eˣ + eʸ) without overflow.
fn log_add(x: f64, y: f64) -> f64 {
    let m = x.max(y);
    m + ((x - m).exp() + (y - m).exp()).ln()
}

/// ln(eˣ − eʸ) for x > y.
fn log_sub(x: f64, y: f64) -> f64 {
    x + (-(y - x).exp()).ln_1p()
}

/// Minimizes `f` from `start` with the Nelder–Mead simplex; returns the best point and the
/// iterations used. Stops when the simplex's values differ by less than `tol` (relative).
pub fn nelder_mead(
    f: &dyn Fn(&[f64]) -> f64,
    start: &[f64],
    tol: f64,
    max_iter: usize,
) -> (Vec<f64>, usize) {
    let n = start.len();
    let mut simplex: Vec<(Vec<f64>, f64)> = (0..=n)
        .map(|i| {
            let mut p = start.to_vec();
            if i > 0 {
                p[i - 1] += if p[i - 1] == 0.0 {
                    0.5
                } else {
                    0.5 * p[i - 1].abs().max(0.5)
                };
            }
            let v = f(&p);
            (p, v)
        })
        .collect();
    let mut iter = 0;
    while iter < max_iter {
        iter += 1;
        simplex.sort_by(|x, y| x.1.total_cmp(&y.1));
        let (best, worst) = (simplex[0].1, simplex[n].1);
        if (worst - best).abs() <= tol * (best.abs() + tol) {
            break;
        }
        let centroid: Vec<f64> = (0..n)
            .map(|j| simplex[..n].iter().map(|(p, _)| p[j]).sum::<f64>() / n as f64)
            .collect();
        let towards = |k: f64| -> Vec<f64> {
            centroid
                .iter()
                .zip(&simplex[n].0)
                .map(|(c, w)| c + k * (w - c))
                .collect()
        };
        let reflected = towards(-1.0);
        let fr = f(&reflected);
        if fr < simplex[0].1 {
            let expanded = towards(-2.0);
            let fe = f(&expanded);
            simplex[n] = if fe < fr {
                (expanded, fe)
            } else {
                (reflected, fr)
            };
        } else if fr < simplex[n - 1].1 {
            simplex[n] = (reflected, fr);
        } else {
            let contracted = if fr < simplex[n].1 {
                towards(-0.5)
            } else {
                towards(0.5)
            };
            let fc = f(&contracted);
            if fc < simplex[n].1.min(fr) {
                simplex[n] = (contracted, fc);
            } else {
                // Shrink towards the best point.
                let best = simplex[0].0.clone();
                for (p, v) in simplex.iter_mut().skip(1) {
                    for (pj, bj) in p.iter_mut().zip(&best) {
                        *pj = bj + 0.5 * (*pj - bj);
                    }
                    *v = f(p);
                }
            }
        }
    }
    simplex.sort_by(|x, y| x.1.total_cmp(&y.1));
    (simplex.swap_remove(0).0, iter)
}

/// Standard errors from the inverse of the numerical Hessian of `neg_ll` at `p`.
fn standard_errors(neg_ll: &dyn Fn(&[f64]) -> f64, p: &[f64]) -> Vec<Option<f64>> {
    let n = p.len();
    let h: Vec<f64> = p.iter().map(|v| 1e-4 * v.abs().max(1e-3)).collect();
    let at = |d: &[(usize, f64)]| {
        let mut q = p.to_vec();
        for &(i, s) in d {
            q[i] += s * h[i];
        }
        neg_ll(&q)
    };
    let mut hess = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in i..n {
            let v = (at(&[(i, 1.0), (j, 1.0)])
                - at(&[(i, 1.0), (j, -1.0)])
                - at(&[(i, -1.0), (j, 1.0)])
                + at(&[(i, -1.0), (j, -1.0)]))
                / (4.0 * h[i] * h[j]);
            hess[i][j] = v;
            hess[j][i] = v;
        }
    }
    inverse_diagonal_roots(hess)
}

/// Square roots of the diagonal of a matrix's inverse (standard errors from an information
/// matrix); `None` where not positive or the matrix is singular.
fn inverse_diagonal_roots(m: Vec<Vec<f64>>) -> Vec<Option<f64>> {
    let n = m.len();
    match invert(m) {
        Some(inv) => (0..n)
            .map(|i| (inv[i][i] > 0.0).then(|| inv[i][i].sqrt()))
            .collect(),
        None => vec![None; n],
    }
}

/// Gauss–Jordan inverse with partial pivoting; `None` when singular.
fn invert(mut m: Vec<Vec<f64>>) -> Option<Vec<Vec<f64>>> {
    let n = m.len();
    let mut inv: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| f64::from(u8::from(i == j))).collect())
        .collect();
    for col in 0..n {
        let pivot = (col..n).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        if m[pivot][col].abs() < 1e-300 {
            return None;
        }
        m.swap(col, pivot);
        inv.swap(col, pivot);
        let d = m[col][col];
        for j in 0..n {
            m[col][j] /= d;
            inv[col][j] /= d;
        }
        for row in 0..n {
            if row != col {
                let k = m[row][col];
                for j in 0..n {
                    m[row][j] -= k * m[col][j];
                    inv[row][j] -= k * inv[col][j];
                }
            }
        }
    }
    Some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::check;

    fn round(v: f64, digits: i32) -> f64 {
        let k = 10f64.powi(digits);
        (v * k).round() / k
    }

    #[test]
    fn ln_gamma_matches_known_values() {
        let f = |x: &f64| round(ln_gamma(*x), 10);
        check(f, 1.0, 0.0);
        check(f, 5.0, round(24f64.ln(), 10));
        check(f, 0.5, round(std::f64::consts::PI.sqrt().ln(), 10));
        // Γ(10.5) = 1133278.3889487855…
        check(f, 10.5, round(13.940_625_219_403_763, 10));
    }

    #[test]
    fn digamma_matches_known_values_and_the_gradients_match_differences() {
        // ψ(1) = −γ (Euler–Mascheroni); ψ(x + 1) = ψ(x) + 1/x.
        assert!((digamma(1.0) + 0.577_215_664_901_532_9).abs() < 1e-12);
        assert!((digamma(3.5) - digamma(2.5) - 1.0 / 2.5).abs() < 1e-12);
        let customers = [
            (
                Summary {
                    x: 0.0,
                    t_x: 0.0,
                    t: 30.0,
                    monetary: 0.0,
                },
                3.0,
            ),
            (
                Summary {
                    x: 2.0,
                    t_x: 20.0,
                    t: 38.0,
                    monetary: 14.0,
                },
                1.0,
            ),
            (
                Summary {
                    x: 5.0,
                    t_x: 9.0,
                    t: 35.0,
                    monetary: 40.0,
                },
                2.0,
            ),
        ];
        let check_gradient = |total: Gradient, ll: fn(&[f64], &Summary) -> f64, p: &[f64]| {
            let (value, grad) = total(p, &customers);
            let direct: f64 = customers.iter().map(|(s, w)| w * ll(p, s)).sum();
            assert!((value - direct).abs() < 1e-9, "{value} {direct}");
            for i in 0..p.len() {
                let h = 1e-6;
                let mut up = p.to_vec();
                up[i] += h;
                let mut down = p.to_vec();
                down[i] -= h;
                let numeric = (total(&up, &customers).0 - total(&down, &customers).0) / (2.0 * h);
                assert!(
                    (numeric - grad[i]).abs() < 1e-5 * numeric.abs().max(1.0),
                    "{i}: {numeric} {}",
                    grad[i]
                );
            }
        };
        check_gradient(bgnbd_total, bgnbd_ll, &[0.3, 4.0, 0.8, 2.5]);
        let repeat = |s: &Summary| s.x > 0.0;
        assert!(customers.iter().any(|(s, _)| repeat(s)));
        let (value, grad) = gamma_gamma_total(&[6.0, 3.7, 15.0], &customers[1..]);
        assert!(value.is_finite() && grad.iter().all(|g| g.is_finite()));
    }

    #[test]
    fn hypergeometric_series_matches_closed_forms() {
        // 2F1(1, 1; 2; z) = −ln(1 − z) / z.
        let z: f64 = 0.6;
        let want = (-(1.0 - z).ln() / z).ln();
        assert!((ln_hyp2f1(1.0, 1.0, 2.0, z) - want).abs() < 1e-12);
        check(|z: &f64| ln_hyp2f1(2.0, 3.0, 4.0, *z), 0.0, 0.0);
    }

    #[test]
    fn summaries_count_days_not_rows() {
        let p = |customer, day, amount| Purchase {
            customer,
            day,
            amount,
        };
        // Customer 0: day 0, twice on day 7 (one occasion of 30), day 14; customer 1 starts
        // after the end.
        let purchases = [
            p(0, 0, 5.0),
            p(0, 7, 10.0),
            p(0, 7, 20.0),
            p(0, 14, 50.0),
            p(1, 30, 9.0),
        ];
        let got = summarize(&purchases, 2, 21, 7.0);
        let want = Summary {
            x: 2.0,
            t_x: 2.0,
            t: 3.0,
            monetary: 40.0,
        };
        assert_eq!(got, vec![Some(want), None]);
        assert_eq!(occasions_between(&purchases, 2, 7, 30), vec![1, 1]);
    }

    #[test]
    fn forecasts_grow_with_frequency_and_shrink_with_absence() {
        // The published CDNOW fits.
        let bg = [0.243, 4.414, 0.793, 2.426];
        let gg = [6.25, 3.74, 15.44];
        let h = Horizon {
            purchases: 52.0,
            period: 52.0 / 12.0,
            periods: 12,
            discount: 0.01,
        };
        let s = |x: f64, t_x: f64| Summary {
            x,
            t_x,
            t: 39.0,
            monetary: 20.0,
        };
        let bg = PurchaseModel::BgNbd(&bg);
        let active = forecast(bg, &gg, &s(5.0, 38.0), h);
        let lapsed = forecast(bg, &gg, &s(5.0, 5.0), h);
        let once = forecast(bg, &gg, &s(0.0, 0.0), h);
        assert!(active.expected_purchases > once.expected_purchases);
        assert!(
            active.p_alive > 0.8 && lapsed.p_alive < 0.1,
            "{active:?} {lapsed:?}"
        );
        assert!(active.value > lapsed.value && lapsed.value > 0.0);
        assert_eq!(once.p_alive, 1.0);
    }

    #[test]
    fn pareto_forecasts_match_lifetimes() {
        // ParetoNBDFitter's conditional_probability_alive and
        // conditional_expected_number_of_purchases_up_to_time(39, ...) in lifetimes 0.11, with
        // these parameters.
        let p = [0.5533, 10.5776, 0.6061, 11.6650];
        for (x, t_x, t, alive, expected) in [
            (2.0, 30.43, 38.86, 0.869133, 1.455188),
            (0.0, 0.0, 38.86, 0.295108, 0.107071),
            (5.0, 5.0, 38.0, 0.0098979, 0.0365868),
            (10.0, 38.0, 39.0, 0.986617, 6.811129),
        ] {
            let c = Summary {
                x,
                t_x,
                t,
                monetary: 0.0,
            };
            let m = PurchaseModel::ParetoNbd(&p);
            assert!(
                (m.alive(&c) / alive - 1.0).abs() < 1e-4,
                "{x} {t_x}: {}",
                m.alive(&c)
            );
            let e = m.expected(&c, 39.0);
            assert!((e / expected - 1.0).abs() < 1e-4, "{x} {t_x}: {e}");
        }
    }

    #[test]
    fn nelder_mead_finds_a_quadratic_minimum() {
        let f = |p: &[f64]| (p[0] - 3.0).powi(2) + 10.0 * (p[1] + 1.0).powi(2);
        let (best, _) = nelder_mead(&f, &[0.0, 0.0], 1e-14, 10_000);
        assert!(
            (best[0] - 3.0).abs() < 1e-5 && (best[1] + 1.0).abs() < 1e-5,
            "{best:?}"
        );
    }
}

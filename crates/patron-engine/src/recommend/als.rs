//! Implicit-feedback matrix factorization: alternating least squares (Hu, Koren & Volinsky
//! 2008) solved per row with a few conjugate-gradient steps (Takács, Pilászy & Tikk 2011).
//!
//! Every unobserved cell counts as a weak "not interested" (preference 0, confidence 1), every
//! observed one as "interested" with confidence `1 + alpha · weight`. Minimizing the weighted
//! squared error over all cells exactly would cost a k×k solve per row; instead each row
//! starts from its previous solution and takes `cg_steps` conjugate-gradient steps, touching
//! only the row's observed cells plus one precomputed Gram matrix `YᵀY + λI`. Rows are
//! independent given the other side, so they are solved in parallel with rayon.

use super::matrix::Csr;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

/// Model settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AlsParams {
    /// Latent factors per user and item.
    pub factors: usize,
    /// L2 regularization λ.
    pub regularization: f32,
    /// Confidence slope: an observed cell of weight w has confidence 1 + alpha·w.
    pub alpha: f32,
    /// Alternations (users then items).
    pub iterations: usize,
    /// Conjugate-gradient steps per row and alternation.
    pub cg_steps: usize,
    /// Seed of the random initial factors.
    pub seed: u64,
}

impl Default for AlsParams {
    fn default() -> Self {
        // Few factors and firm regularization: a retailer's catalogue and baskets are small
        // next to film ratings, and more factors memorize instead of generalizing (measured
        // on the demo data with `patron eval recommend`, docs/RECOMMEND.md).
        AlsParams {
            factors: 16,
            regularization: 1.0,
            // On BM25-weighted interactions (the recommend stage), whose weights are already
            // several units each.
            alpha: 1.0,
            iterations: 15,
            cg_steps: 3,
            seed: 1,
        }
    }
}

/// Learned factors, row-major: user `u` is `users[u * k..(u + 1) * k]`.
#[derive(Debug, Clone)]
pub struct AlsModel {
    /// Factors per row.
    pub k: usize,
    /// User factors.
    pub users: Vec<f32>,
    /// Item factors.
    pub items: Vec<f32>,
}

impl AlsModel {
    /// User `u`'s factors.
    pub fn user(&self, u: usize) -> &[f32] {
        &self.users[u * self.k..(u + 1) * self.k]
    }

    /// Item `i`'s factors.
    pub fn item(&self, i: usize) -> &[f32] {
        &self.items[i * self.k..(i + 1) * self.k]
    }

    /// The predicted preference of every item for user `u`, into `out`.
    pub fn scores(&self, u: usize, out: &mut Vec<f32>) {
        let x = self.user(u);
        out.clear();
        out.extend(self.items.chunks_exact(self.k).map(|y| dot(x, y)));
    }
}

/// Trains on a users × items matrix of weights.
pub fn train(user_items: &Csr, params: &AlsParams) -> AlsModel {
    let k = params.factors.max(1);
    let item_users = user_items.transpose();
    // Small random starts (as in the reference implementations): all-zero factors would make
    // every gradient zero.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(params.seed);
    let mut init = |n: usize| -> Vec<f32> { (0..n * k).map(|_| rng.gen::<f32>() * 0.01).collect() };
    let mut users = init(user_items.rows);
    let mut items = init(user_items.cols_n);
    for _ in 0..params.iterations {
        solve_side(&mut users, &items, user_items, k, params);
        solve_side(&mut items, &users, &item_users, k, params);
    }
    AlsModel { k, users, items }
}

/// One half-step: every row of `x` re-solved against the fixed `y`.
fn solve_side(x: &mut [f32], y: &[f32], m: &Csr, k: usize, params: &AlsParams) {
    let gram = gram(y, k, params.regularization);
    let alpha = params.alpha;
    x.par_chunks_mut(k)
        .enumerate()
        .with_min_len(64)
        .for_each_init(
            || (vec![0f32; k], vec![0f32; k], vec![0f32; k]),
            |(r, p, ap), (row, xu)| {
                let (cols, weights) = m.row(row);
                if cols.is_empty() {
                    // Nothing observed: the solution is zero (and stays out of YᵀY).
                    xu.fill(0.0);
                    return;
                }
                cg_row(
                    xu,
                    y,
                    cols,
                    weights,
                    &gram,
                    alpha,
                    params.cg_steps,
                    r,
                    p,
                    ap,
                );
            },
        );
}

/// `YᵀY + λI`, k × k row-major.
fn gram(y: &[f32], k: usize, reg: f32) -> Vec<f32> {
    // Partial sums over fixed blocks, added in order: the same factors always give the same
    // matrix, whatever the threads did (a work-stealing reduction would not).
    let partials: Vec<Vec<f32>> = y
        .par_chunks(k * 256)
        .map(|block| {
            let mut acc = vec![0f32; k * k];
            for row in block.chunks_exact(k) {
                for (a, &ra) in row.iter().enumerate() {
                    axpy(&mut acc[a * k..(a + 1) * k], ra, row);
                }
            }
            acc
        })
        .collect();
    let mut g = vec![0f32; k * k];
    for p in partials {
        g.iter_mut().zip(p).for_each(|(x, y)| *x += y);
    }
    for d in 0..k {
        g[d * k + d] += reg;
    }
    g
}

/// Conjugate-gradient steps on one row's normal equations
/// `(YᵀY + λI + Yᵀ(C − I)Y) x = YᵀCp`, starting from its current `x`.
#[allow(clippy::too_many_arguments)]
fn cg_row(
    x: &mut [f32],
    y: &[f32],
    cols: &[u32],
    weights: &[f32],
    gram: &[f32],
    alpha: f32,
    steps: usize,
    r: &mut [f32],
    p: &mut [f32],
    ap: &mut [f32],
) {
    let k = x.len();
    let item = |i: u32| &y[i as usize * k..(i as usize + 1) * k];
    // r = b − A x, with b = Σ c·y_i and A x = G x + Σ (c − 1)(y_i·x) y_i.
    matvec(gram, x, r);
    r.iter_mut().for_each(|v| *v = -*v);
    for (&i, &w) in cols.iter().zip(weights) {
        let c1 = alpha * w;
        let yi = item(i);
        axpy(r, (1.0 + c1) - c1 * dot(yi, x), yi);
    }
    p.copy_from_slice(r);
    let mut rs_old = dot(r, r);
    for _ in 0..steps {
        if rs_old < 1e-20 {
            break;
        }
        matvec(gram, p, ap);
        for (&i, &w) in cols.iter().zip(weights) {
            let yi = item(i);
            axpy(ap, alpha * w * dot(yi, p), yi);
        }
        let pap = dot(p, ap);
        // Only with no regularization and a degenerate row can this be zero; a NaN here
        // would spread through the next Gram matrix to everyone.
        if !(pap.is_finite() && pap > 0.0) {
            break;
        }
        let a = rs_old / pap;
        axpy(x, a, p);
        axpy(r, -a, ap);
        let rs_new = dot(r, r);
        if rs_new < 1e-20 {
            break;
        }
        let beta = rs_new / rs_old;
        p.iter_mut()
            .zip(r.iter())
            .for_each(|(pv, rv)| *pv = rv + beta * *pv);
        rs_old = rs_new;
    }
}

/// `out = m v` for a square row-major `m`.
fn matvec(m: &[f32], v: &[f32], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(m.chunks_exact(v.len())) {
        *o = dot(row, v);
    }
}

/// Dot product in eight independent lanes, which the compiler turns into SIMD.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// `y += a x`.
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    y.iter_mut().zip(x).for_each(|(yv, xv)| *yv += a * xv);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two groups of users with disjoint tastes: after training, each user scores an unseen
    /// item of their own group above every item of the other group.
    #[test]
    fn learns_block_structure() {
        let mut t = Vec::new();
        for u in 0..40u32 {
            let group = u % 2;
            for i in 0..10u32 {
                // Each user misses one item of their group.
                if i != u % 10 {
                    t.push((u, group * 10 + i, 1.0));
                }
            }
        }
        let m = Csr::from_triplets(40, 20, &t);
        // Two factors for two tastes: more would let the model memorize each user's gaps.
        let params = AlsParams {
            factors: 2,
            iterations: 10,
            ..AlsParams::default()
        };
        let model = train(&m, &params);
        let mut s = Vec::new();
        for u in 0..40usize {
            model.scores(u, &mut s);
            let own = (u % 2) * 10 + u % 10;
            let other = if u % 2 == 0 { 10..20 } else { 0..10 };
            assert!(other.clone().all(|j| s[own] > s[j]), "user {u}: {s:?}");
        }
    }

    /// Conjugate gradient with as many steps as factors solves the normal equations exactly:
    /// compare with a direct solve of the same system.
    #[test]
    fn cg_converges_to_the_exact_row_solution() {
        let k = 4;
        let y: Vec<f32> = (0..6 * k)
            .map(|v| ((v * 7919) % 13) as f32 / 13.0)
            .collect();
        let cols = [0u32, 2, 5];
        let weights = [1.0f32, 3.0, 2.0];
        let (alpha, reg) = (2.0, 0.1);
        let g = gram(&y, k, reg);
        let mut x = vec![0f32; k];
        let (mut r, mut p, mut ap) = (vec![0f32; k], vec![0f32; k], vec![0f32; k]);
        cg_row(
            &mut x, &y, &cols, &weights, &g, alpha, 20, &mut r, &mut p, &mut ap,
        );
        // Direct: A = G + Σ c1 y yᵀ, b = Σ (1 + c1) y, solved by Gaussian elimination in f64.
        let mut a: Vec<f64> = g.iter().map(|&v| v as f64).collect();
        let mut b = vec![0f64; k];
        for (&i, &w) in cols.iter().zip(&weights) {
            let c1 = (alpha * w) as f64;
            let yi = &y[i as usize * k..(i as usize + 1) * k];
            for r in 0..k {
                b[r] += (1.0 + c1) * yi[r] as f64;
                for c in 0..k {
                    a[r * k + c] += c1 * yi[r] as f64 * yi[c] as f64;
                }
            }
        }
        for col in 0..k {
            for row in col + 1..k {
                let f = a[row * k + col] / a[col * k + col];
                for c in 0..k {
                    a[row * k + c] -= f * a[col * k + c];
                }
                b[row] -= f * b[col];
            }
        }
        let mut exact = vec![0f64; k];
        for row in (0..k).rev() {
            let s: f64 = (row + 1..k).map(|c| a[row * k + c] * exact[c]).sum();
            exact[row] = (b[row] - s) / a[row * k + row];
        }
        for (got, want) in x.iter().zip(&exact) {
            assert!((*got as f64 - want).abs() < 1e-3, "{x:?} vs {exact:?}");
        }
    }
}

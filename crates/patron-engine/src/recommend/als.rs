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
        struct Scores<'a> {
            user: &'a [f32],
            items: &'a [f32],
            out: &'a mut Vec<f32>,
        }
        impl pulp::WithSimd for Scores<'_> {
            type Output = ();
            #[inline(always)]
            fn with_simd<S: pulp::Simd>(self, simd: S) {
                // A plain loop, not `extend(map(..))`: the iterator's fold would be a function
                // of its own, compiled without the wider vectors, calling each one as a function.
                self.out.clear();
                for y in self.items.chunks_exact(self.user.len()) {
                    self.out.push(dot(simd, self.user, y));
                }
            }
        }
        pulp::Arch::new().dispatch(Scores {
            user: self.user(u),
            items: &self.items,
            out,
        });
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
    // The CPU's widest vector unit, found at run time: the binary stays portable, and a
    // machine with AVX2 and FMA runs the loops below on 8-lane vectors instead of 4.
    let simd = pulp::Arch::new();
    let gram = gram(simd, y, k, params.regularization);
    x.par_chunks_mut(k)
        .enumerate()
        .with_min_len(64)
        .for_each_init(
            || (vec![0f32; k], vec![0f32; k], vec![0f32; k]),
            |(r, p, ap), (row, x)| {
                let (cols, weights) = m.row(row);
                if cols.is_empty() {
                    // Nothing observed: the solution is zero (and stays out of YᵀY).
                    x.fill(0.0);
                    return;
                }
                simd.dispatch(CgRow {
                    x,
                    y,
                    cols,
                    weights,
                    gram: &gram,
                    alpha: params.alpha,
                    steps: params.cg_steps,
                    r,
                    p,
                    ap,
                });
            },
        );
}

/// `YᵀY + λI`, k × k row-major.
fn gram(simd: pulp::Arch, y: &[f32], k: usize, reg: f32) -> Vec<f32> {
    // Partial sums over fixed blocks, added in order: the same factors always give the same
    // matrix, whatever the threads did (a work-stealing reduction would not).
    let partials: Vec<Vec<f32>> = y
        .par_chunks(k * 256)
        .map(|rows| {
            let mut acc = vec![0f32; k * k];
            simd.dispatch(GramBlock {
                rows,
                k,
                acc: &mut acc,
            });
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

/// `acc += Σ yᵢ yᵢᵀ` over a block of rows of length `k`; `acc` is k × k.
struct GramBlock<'a> {
    rows: &'a [f32],
    k: usize,
    acc: &'a mut [f32],
}

impl pulp::WithSimd for GramBlock<'_> {
    type Output = ();

    // Inlined, with everything it calls, into `pulp`'s function for the detected CPU, so the
    // compiler vectorizes these loops for that CPU.
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        for row in self.rows.chunks_exact(self.k) {
            for (acc, &ra) in self.acc.chunks_exact_mut(self.k).zip(row) {
                axpy(simd, acc, ra, row);
            }
        }
    }
}

/// Conjugate-gradient steps on one row's normal equations
/// `(YᵀY + λI + Yᵀ(C − I)Y) x = YᵀCp`, starting from its current `x`; `r`, `p` and `ap` are
/// scratch of the row's length.
struct CgRow<'a> {
    x: &'a mut [f32],
    y: &'a [f32],
    cols: &'a [u32],
    weights: &'a [f32],
    gram: &'a [f32],
    alpha: f32,
    steps: usize,
    r: &'a mut [f32],
    p: &'a mut [f32],
    ap: &'a mut [f32],
}

impl pulp::WithSimd for CgRow<'_> {
    type Output = ();

    // As `GramBlock`'s: inlined into the vectorized caller.
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        self.solve(simd)
    }
}

impl CgRow<'_> {
    #[inline(always)]
    fn solve<S: pulp::Simd>(self, simd: S) {
        let CgRow {
            x,
            y,
            cols,
            weights,
            gram,
            alpha,
            steps,
            r,
            p,
            ap,
        } = self;
        let k = x.len();
        let item = |i: u32| &y[i as usize * k..(i as usize + 1) * k];
        // r = b − A x, with b = Σ c·y_i and A x = G x + Σ (c − 1)(y_i·x) y_i.
        matvec(simd, gram, x, r);
        r.iter_mut().for_each(|v| *v = -*v);
        for (&i, &w) in cols.iter().zip(weights) {
            let c1 = alpha * w;
            let yi = item(i);
            axpy(simd, r, (1.0 + c1) - c1 * dot(simd, yi, x), yi);
        }
        p.copy_from_slice(r);
        let mut rs_old = dot(simd, r, r);
        for _ in 0..steps {
            if rs_old < 1e-20 {
                break;
            }
            matvec(simd, gram, p, ap);
            for (&i, &w) in cols.iter().zip(weights) {
                let yi = item(i);
                axpy(simd, ap, alpha * w * dot(simd, yi, p), yi);
            }
            let pap = dot(simd, p, ap);
            // Only with no regularization and a degenerate row can this be zero; a NaN here
            // would spread through the next Gram matrix to everyone.
            if !(pap.is_finite() && pap > 0.0) {
                break;
            }
            let a = rs_old / pap;
            axpy(simd, x, a, p);
            axpy(simd, r, -a, ap);
            let rs_new = dot(simd, r, r);
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
}

/// `out = m v` for a symmetric row-major `m`, as the sum of its rows weighted by `v`: axpys
/// need no horizontal sum at the end, which a dot product per row would.
#[inline(always)]
fn matvec<S: pulp::Simd>(simd: S, m: &[f32], v: &[f32], out: &mut [f32]) {
    out.fill(0.0);
    for (&vj, row) in v.iter().zip(m.chunks_exact(v.len())) {
        axpy(simd, out, vj, row);
    }
}

/// Dot product on `simd`'s vectors, in four independent accumulators: one would chain every
/// multiply-add on the one before it, and the CPU would wait out each one's latency.
#[inline(always)]
fn dot<S: pulp::Simd>(simd: S, a: &[f32], b: &[f32]) -> f32 {
    let ((va, ta), (vb, tb)) = (S::as_simd_f32s(a), S::as_simd_f32s(b));
    let ((ca, ra), (cb, rb)) = (va.as_chunks::<4>(), vb.as_chunks::<4>());
    let mut acc = [simd.splat_f32s(0.0); 4];
    for (x, y) in ca.iter().zip(cb) {
        for l in 0..4 {
            acc[l] = simd.mul_add_e_f32s(x[l], y[l], acc[l]);
        }
    }
    for (x, y) in ra.iter().zip(rb) {
        acc[0] = simd.mul_add_e_f32s(*x, *y, acc[0]);
    }
    let sum = simd.add_f32s(simd.add_f32s(acc[0], acc[1]), simd.add_f32s(acc[2], acc[3]));
    simd.reduce_sum_f32s(sum) + ta.iter().zip(tb).map(|(x, y)| x * y).sum::<f32>()
}

/// `y += a x` on `simd`'s vectors.
#[inline(always)]
fn axpy<S: pulp::Simd>(simd: S, y: &mut [f32], a: f32, x: &[f32]) {
    let ((vy, ty), (vx, tx)) = (S::as_mut_simd_f32s(y), S::as_simd_f32s(x));
    let va = simd.splat_f32s(a);
    for (yv, xv) in vy.iter_mut().zip(vx) {
        *yv = simd.mul_add_e_f32s(va, *xv, *yv);
    }
    ty.iter_mut().zip(tx).for_each(|(yv, xv)| *yv += a * xv);
}

/// The dot product of two factor vectors, on the widest vectors this CPU has.
pub(crate) fn factor_dot(a: &[f32], b: &[f32]) -> f32 {
    struct Dot<'a>(&'a [f32], &'a [f32]);
    impl pulp::WithSimd for Dot<'_> {
        type Output = f32;
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, simd: S) -> f32 {
            dot(simd, self.0, self.1)
        }
    }
    pulp::Arch::new().dispatch(Dot(a, b))
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
        let g = gram(pulp::Arch::new(), &y, k, reg);
        let mut x = vec![0f32; k];
        let (mut r, mut p, mut ap) = (vec![0f32; k], vec![0f32; k], vec![0f32; k]);
        CgRow {
            x: &mut x,
            y: &y,
            cols: &cols,
            weights: &weights,
            gram: &g,
            alpha,
            steps: 20,
            r: &mut r,
            p: &mut p,
            ap: &mut ap,
        }
        .solve(pulp::Scalar::new());
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

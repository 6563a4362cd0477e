//! Implicit feedback as sparse matrices: who interacted with what, and how strongly.

use rayon::prelude::*;

/// A compressed sparse row matrix of non-negative weights: row `r`'s columns are
/// `cols[ptr[r]..ptr[r + 1]]`, ascending, each once.
#[derive(Debug, Clone, PartialEq)]
pub struct Csr {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols_n: usize,
    /// Row starts into `cols` and `weights`, `rows + 1` long.
    pub ptr: Vec<usize>,
    /// Column indexes.
    pub cols: Vec<u32>,
    /// Weights, parallel to `cols`.
    pub weights: Vec<f32>,
}

impl Csr {
    /// Builds a matrix from `(row, col, weight)` triplets; repeated cells add up, and cells
    /// with a total weight of zero or less are dropped.
    pub fn from_triplets(rows: usize, cols_n: usize, triplets: &[(u32, u32, f32)]) -> Csr {
        let mut cells = triplets.to_vec();
        cells.par_sort_unstable_by_key(|&(r, c, _)| (r, c));
        cells.dedup_by(|next, kept| {
            let same = (next.0, next.1) == (kept.0, kept.1);
            if same {
                kept.2 += next.2;
            }
            same
        });
        cells.retain(|&(_, _, w)| w > 0.0);
        let mut ptr = vec![0usize; rows + 1];
        for &(r, _, _) in &cells {
            ptr[r as usize + 1] += 1;
        }
        let cols = cells.iter().map(|c| c.1).collect();
        let weights = cells.iter().map(|c| c.2).collect();
        for r in 0..rows {
            ptr[r + 1] += ptr[r];
        }
        Csr {
            rows,
            cols_n,
            ptr,
            cols,
            weights,
        }
    }

    /// Row `r`: its columns and weights.
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let span = self.ptr[r]..self.ptr[r + 1];
        (&self.cols[span.clone()], &self.weights[span])
    }

    /// Number of stored cells.
    pub fn nnz(&self) -> usize {
        self.cols.len()
    }

    /// The matrix reweighted by Okapi BM25, the text-retrieval weighting applied to
    /// interactions: a cell's weight saturates (`k1`), is normalized by the length of its
    /// row (`b`: a customer with hundreds of purchases says less with each), and is scaled by
    /// the column's inverse frequency (buying a bestseller says less about a taste than
    /// buying a niche product). Rows and columns keep their cells.
    pub fn bm25(&self, k1: f32, b: f32) -> Csr {
        let mut df = vec![0f32; self.cols_n];
        for &c in &self.cols {
            df[c as usize] += 1.0;
        }
        let rows_with_cells = (0..self.rows)
            .filter(|&r| self.ptr[r + 1] > self.ptr[r])
            .count()
            .max(1);
        let avg = self.nnz() as f32 / rows_with_cells as f32;
        let n = self.rows as f32;
        let mut out = self.clone();
        for r in 0..self.rows {
            let span = self.ptr[r]..self.ptr[r + 1];
            let norm = k1 * (1.0 - b + b * span.len() as f32 / avg.max(f32::MIN_POSITIVE));
            for at in span {
                let w = self.weights[at];
                // At least a little weight: an item everyone bought still counts as bought.
                let idf = (n / df[self.cols[at] as usize]).ln().max(1e-3);
                out.weights[at] = w * (k1 + 1.0) / (w + norm) * idf;
            }
        }
        out
    }

    /// The transpose (columns become rows).
    pub fn transpose(&self) -> Csr {
        let mut ptr = vec![0usize; self.cols_n + 1];
        for &c in &self.cols {
            ptr[c as usize + 1] += 1;
        }
        for c in 0..self.cols_n {
            ptr[c + 1] += ptr[c];
        }
        let mut next = ptr.clone();
        let mut cols = vec![0u32; self.nnz()];
        let mut weights = vec![0f32; self.nnz()];
        // Rows are visited in order, so each transposed row comes out sorted.
        for r in 0..self.rows {
            let (cs, ws) = self.row(r);
            for (&c, &w) in cs.iter().zip(ws) {
                let at = &mut next[c as usize];
                cols[*at] = r as u32;
                weights[*at] = w;
                *at += 1;
            }
        }
        Csr {
            rows: self.cols_n,
            cols_n: self.rows,
            ptr,
            cols,
            weights,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triplets_add_up_and_transpose_round_trips() {
        let m = Csr::from_triplets(
            3,
            4,
            &[
                (0, 3, 1.0),
                (0, 1, 2.0),
                (0, 3, 1.0),
                (2, 0, 1.0),
                (2, 2, -1.0),
            ],
        );
        assert_eq!(m.row(0), (&[1u32, 3][..], &[2.0f32, 2.0][..]));
        assert_eq!(m.row(1), (&[][..], &[][..]));
        assert_eq!(
            m.row(2),
            (&[0u32][..], &[1.0f32][..]),
            "a negative total is dropped"
        );
        let t = m.transpose();
        assert_eq!(t.row(3), (&[0u32][..], &[2.0f32][..]));
        assert_eq!(t.transpose(), m);
    }

    #[test]
    fn bm25_favours_rare_items_and_short_rows() {
        // Item 0 bought by all three, item 1 by one; user 2 bought many things.
        let mut t = vec![(0, 0, 1.0), (0, 1, 1.0), (1, 0, 1.0), (2, 0, 1.0)];
        t.extend((2..8).map(|i| (2u32, i, 1.0)));
        let m = Csr::from_triplets(3, 8, &t).bm25(100.0, 0.8);
        let w = |r: usize, c: u32| {
            let (cols, ws) = m.row(r);
            ws[cols.iter().position(|&x| x == c).unwrap()]
        };
        assert!(w(0, 1) > w(0, 0), "the rare item weighs more");
        assert!(w(0, 0) > 0.0, "a bestseller still counts");
        assert!(
            w(1, 0) > w(2, 0),
            "one of few purchases says more than one of many"
        );
        assert_eq!(m.nnz(), 10);
    }
}

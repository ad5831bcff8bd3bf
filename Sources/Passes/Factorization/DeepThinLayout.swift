import Linalg

/// A weight re-laid-out into an auxiliary m'×n' matrix (METHODS §2.2): the weight's elements in
/// row-major order fill the first N = m·n entries of the m'×n' matrix row by row, the rest is
/// padding. `P = X_f·W_f` of rank r rebuilds the weight as the first N entries of P.
struct DeepThinLayout: Equatable {
  let rows: Int
  let columns: Int
  /// The weight's element count N.
  let count: Int

  var padding: Int { rows * columns - count }
  func params(rank r: Int) -> Int { r * (rows + columns) }

  /// The layouts to try for a weight of shape m×n: the plain one (m, n), which is plain low rank,
  /// and up to `extra` near-square ones (n' near √N sharing no factor above 2 with n, little
  /// padding), which break the rank constraint (METHODS §2.2).
  static func candidates(rows m: Int, columns n: Int, extra: Int = 2) -> [DeepThinLayout] {
    let count = m * n
    var result = [DeepThinLayout(rows: m, columns: n, count: count)]
    let root = Int(Double(count).squareRoot().rounded(.up))
    var scored: [(waste: Int, layout: DeepThinLayout)] = []
    for c in max(2, root - root / 8)...(root + root / 8 + 1) where gcd(c, n) <= 2 && c != n && c != m {
      let r = (count + c - 1) / c
      scored.append((r * c - count, DeepThinLayout(rows: r, columns: c, count: count)))
    }
    for s in scored.sorted(by: { ($0.waste, $0.layout.columns) < ($1.waste, $1.layout.columns) }).prefix(extra) {
      result.append(s.layout)
    }
    return result
  }

  /// The flat weight `f` laid out m'×n' (padding zero).
  func layOut(_ f: [Float]) -> Matrix {
    var a = Matrix(rows: rows, columns: columns)
    for i in 0..<count { a.elements[i] = f[i] }
    return a
  }

  /// The rank-r factors of the layout of `f` by truncated SVD, with `rounds` of hard impute for
  /// the padding entries (METHODS §2.3): X_f = U_r Σ_r^½ (m'×r), W_f = Σ_r^½ V_rᵀ (r×n').
  func factors(of f: [Float], rank r: Int, rounds: Int = 10) throws -> (x: Matrix, w: Matrix) {
    var a = layOut(f)
    var svd = try a.truncatedSVD(rank: r)
    if padding > 0 {
      for _ in 0..<rounds {
        let p = svd.reconstructed()
        for i in count..<(rows * columns) { a.elements[i] = p.elements[i] }
        svd = try a.truncatedSVD(rank: r)
      }
    }
    var us = svd.u, vt = svd.vt
    for (k, s) in svd.singularValues.enumerated() {
      let root = Float(Double(s).squareRoot())
      for i in 0..<us.rows { us[i, k] *= root }
      for j in 0..<vt.columns { vt[k, j] *= root }
    }
    return (us, vt)
  }

  /// The first N entries of X_f·W_f: the rebuilt flat weight.
  func rebuild(x: Matrix, w: Matrix) -> [Float] {
    Array(x.multiplied(by: w).elements.prefix(count))
  }

  /// The relative error of the rank-r truncations of the zero-padded layout, for every r (an
  /// upper bound of the error hard impute reaches): result[r].
  func truncationErrors(of f: [Float]) throws -> [Double] {
    let s = try layOut(f).singularValueDecomposition().singularValues.map { Double($0) * Double($0) }
    let total = squaredNorm(f)
    var tail = [Double](repeating: 0, count: s.count + 1)
    for i in s.indices.reversed() { tail[i] = tail[i + 1] + s[i] }
    return tail.map { total > 0 ? (min($0, total) / total).squareRoot() : 0 }
  }
}

private func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }

import Linalg

// The numerics of factorize-kronecker (METHODS §3.2-3.5), kept apart from the graph rewriting.
//
// Orientation: the framework's W is d_in × d_out (p × q) with y = x·W. A split is p = p1·p2 and
// q = q1·q2; a term is A (p1 × q1) ⊗ B (p2 × q2) with (A⊗B)[i1·p2 + i2, j1·q2 + j2] = A[i1,j1]·B[i2,j2].

/// One way to cut a p × q weight into Kronecker factor shapes.
struct KroneckerSplit: Equatable, CustomStringConvertible {
  let p1: Int, p2: Int, q1: Int, q2: Int

  /// Parameters of one term, A and B.
  var termParams: Int { p1 * q1 + p2 * q2 }
  /// The largest useful number of terms (the rank of the rearranged matrix).
  var maxTerms: Int { min(p1 * q1, p2 * q2) }
  /// Whether the A factor is applied first (the cheaper order of METHODS §3.3).
  var aFirst: Bool { p2 * q1 * (p1 + q2) < p1 * q2 * (p2 + q1) }
  /// MACs per input row of an r-term sum, in the cheaper order.
  func macsPerRow(terms r: Int) -> Int { r * min(p2 * q1 * (p1 + q2), p1 * q2 * (p2 + q1)) }
  /// "(32×32)⊗(32×16)": A's shape then B's, as d_in × d_out blocks.
  var description: String { "(\(p1)×\(q1))⊗(\(p2)×\(q2))" }

  /// The `limit` splits of p × q with the fewest parameters per term, leaving out the degenerate
  /// ones (a factor of one element, or A⊗B an outer product, which is plain low rank).
  static func candidates(p: Int, q: Int, limit: Int) -> [KroneckerSplit] {
    var splits: [KroneckerSplit] = []
    for p1 in divisors(p) {
      for q1 in divisors(q) {
        let s = KroneckerSplit(p1: p1, p2: p / p1, q1: q1, q2: q / q1)
        guard s.p1 * s.q1 > 1, s.p2 * s.q2 > 1, !(s.q1 == 1 && s.p2 == 1), !(s.p1 == 1 && s.q2 == 1) else { continue }
        splits.append(s)
      }
    }
    return Array(
      splits.sorted { ($0.termParams, abs($0.p1 - $0.p2) + abs($0.q1 - $0.q2)) < ($1.termParams, abs($1.p1 - $1.p2) + abs($1.q1 - $1.q2)) }
        .prefix(limit))
  }

  static func divisors(_ n: Int) -> [Int] { n < 1 ? [] : (1...n).filter { n % $0 == 0 } }

  /// The rearrangement R(W) (p1·q1 × p2·q2): row i1·q1 + j1 is the (i1, j1) block of W, flattened.
  func rearranged(_ w: Matrix) -> Matrix {
    var r = Matrix(rows: p1 * q1, columns: p2 * q2)
    let q = q1 * q2
    for i1 in 0..<p1 {
      for j1 in 0..<q1 {
        let row = (i1 * q1 + j1) * p2 * q2
        for i2 in 0..<p2 {
          let source = (i1 * p2 + i2) * q + j1 * q2
          for j2 in 0..<q2 { r.elements[row + i2 * q2 + j2] = w.elements[source + j2] }
        }
      }
    }
    return r
  }
}

/// A sum of Kronecker products Σ_k A_k ⊗ B_k, A stored as `a[k]` (p1 × q1), B as `b[k]` (p2 × q2).
struct KroneckerSum {
  let split: KroneckerSplit
  var a: [Matrix]
  var b: [Matrix]

  var terms: Int { a.count }
  var params: Int { terms * split.termParams }

  /// The nearest r-term sum to `w` in the Frobenius norm: the rank-r SVD of R(W) (Van Loan–Pitsianis).
  init(nearestTo svd: SingularValueDecomposition, split: KroneckerSplit, terms r: Int) {
    self.split = split
    let r = min(r, svd.singularValues.count)
    a = []
    b = []
    for k in 0..<r {
      let s = Float(Double(max(svd.singularValues[k], 0)).squareRoot())
      var ak = Matrix(rows: split.p1, columns: split.q1), bk = Matrix(rows: split.p2, columns: split.q2)
      for i in 0..<ak.elements.count { ak.elements[i] = s * svd.u[i, k] }
      for i in 0..<bk.elements.count { bk.elements[i] = s * svd.vt[k, i] }
      // The sign split is free: make A's largest entry positive.
      if let big = ak.elements.max(by: { abs($0) < abs($1) }), big < 0 {
        ak.elements = ak.elements.map { -$0 }
        bk.elements = bk.elements.map { -$0 }
      }
      a.append(ak)
      b.append(bk)
    }
  }

  /// The dense p × q matrix (for measuring and doping; the graph never holds it).
  func dense() -> Matrix {
    let s = split, q = s.q1 * s.q2
    var w = Matrix(rows: s.p1 * s.p2, columns: q)
    for k in 0..<terms {
      for i1 in 0..<s.p1 {
        for j1 in 0..<s.q1 {
          let alpha = a[k][i1, j1]
          guard alpha != 0 else { continue }
          for i2 in 0..<s.p2 {
            let row = (i1 * s.p2 + i2) * q + j1 * s.q2
            for j2 in 0..<s.q2 { w.elements[row + j2] += alpha * b[k][i2, j2] }
          }
        }
      }
    }
    return w
  }

  /// `A_all` (r·p1 × q1) with A_k in rows k·p1 ..< (k+1)·p1, and the same stacking for B.
  var stackedA: Matrix { Self.stack(a) }
  var stackedB: Matrix { Self.stack(b) }
  /// `[A_0 A_1 …]` (p1 × r·q1), and the same for B.
  var concatenatedA: Matrix { Self.concatenate(a) }
  var concatenatedB: Matrix { Self.concatenate(b) }

  static func stack(_ ms: [Matrix]) -> Matrix {
    Matrix(rows: ms.reduce(0) { $0 + $1.rows }, columns: ms.first?.columns ?? 0, elements: ms.flatMap(\.elements))
  }

  static func concatenate(_ ms: [Matrix]) -> Matrix {
    guard let first = ms.first else { return Matrix(rows: 0, columns: 0) }
    var out = Matrix(rows: first.rows, columns: first.columns * ms.count)
    for (k, m) in ms.enumerated() {
      for i in 0..<m.rows {
        for j in 0..<m.columns { out[i, k * m.columns + j] = m[i, j] }
      }
    }
    return out
  }
}

/// The calibration-aware fit: alternating least squares on ‖Y − X̂·Σ A_k⊗B_k‖, which is linear in
/// the A's when the B's are fixed and the other way round (METHODS §3.5, issue 7).
///
/// With X_n the n-th input row as a p1 × p2 matrix, the output block Y_n (q1 × q2) is
/// Σ_k A_kᵀ·X_n·B_k. Fixing the B's, column j1 of every A_k is a least-squares fit on the rows
/// (n, j2) of Z_k = X_n·B_k; fixing the A's, column j2 of every B_k one on the rows (n, j1) of
/// V_k = A_kᵀ·X_n. Each step is a ridge regression with r·p1 (or r·p2) unknowns per column.
enum KroneckerALS {
  /// Refits `start` for `iterations` rounds; returns the best sum met (the start included) and its
  /// relative output error ‖Y − X̂·W'‖ / ‖Y‖.
  static func refit(_ start: KroneckerSum, inputs x: Matrix, targets y: Matrix, iterations: Int) -> (KroneckerSum, Double) {
    let norm = Double(y.frobeniusNorm)
    func error(_ s: KroneckerSum) -> Double {
      let e = residual(of: s, inputs: x, targets: y).frobeniusNorm
      return norm > 0 ? Double(e) / norm : Double(e)
    }
    var best = (start, error(start)), current = start
    for _ in 0..<iterations {
      guard let a = try? solveA(current, x, y) else { break }
      current.a = a
      guard let b = try? solveB(current, x, y) else { break }
      current.b = b
      balance(&current)
      let e = error(current)
      if e < best.1 { best = (current, e) }
    }
    return best
  }

  /// Y − X̂·W' (N × q), without forming W'.
  static func residual(of s: KroneckerSum, inputs x: Matrix, targets y: Matrix) -> Matrix {
    var r = y
    let out = apply(s, to: x)
    for i in r.elements.indices { r.elements[i] -= out.elements[i] }
    return r
  }

  /// X̂·(Σ A_k ⊗ B_k) computed factor by factor (N × q).
  static func apply(_ s: KroneckerSum, to x: Matrix) -> Matrix {
    let sp = s.split, n = x.rows
    let xr = Matrix(rows: n * sp.p1, columns: sp.p2, elements: x.elements)
    var out = Matrix(rows: n, columns: sp.q1 * sp.q2)
    for k in 0..<s.terms {
      let z = xr.multiplied(by: s.b[k])  // [(n, i1), j2]
      // out[n, j1·q2 + j2] += Σ_i1 A[i1, j1]·z[(n, i1), j2]
      for row in 0..<n {
        let zn = Matrix(rows: sp.p1, columns: sp.q2, elements: Array(z.elements[(row * sp.p1 * sp.q2)..<((row + 1) * sp.p1 * sp.q2)]))
        let block = s.a[k].multiplied(by: zn, transposingSelf: true)  // q1 × q2
        let base = row * sp.q1 * sp.q2
        for i in block.elements.indices { out.elements[base + i] += block.elements[i] }
      }
    }
    return out
  }

  /// The A's minimizing the output error for the current B's.
  private static func solveA(_ s: KroneckerSum, _ x: Matrix, _ y: Matrix) throws -> [Matrix] {
    let sp = s.split, n = x.rows, r = s.terms, cols = r * sp.p1
    let xr = Matrix(rows: n * sp.p1, columns: sp.p2, elements: x.elements)
    var phi = Matrix(rows: n * sp.q2, columns: cols), target = Matrix(rows: n * sp.q2, columns: sp.q1)
    for k in 0..<r {
      let z = xr.multiplied(by: s.b[k])  // [(n, i1), j2]
      for row in 0..<n {
        for i1 in 0..<sp.p1 {
          for j2 in 0..<sp.q2 { phi[row * sp.q2 + j2, k * sp.p1 + i1] = z[row * sp.p1 + i1, j2] }
        }
      }
    }
    for row in 0..<n {
      for j1 in 0..<sp.q1 {
        for j2 in 0..<sp.q2 { target[row * sp.q2 + j2, j1] = y[row, j1 * sp.q2 + j2] }
      }
    }
    let all = try ridgeSolve(phi, target)
    return (0..<r).map { all.submatrix(rows: ($0 * sp.p1)..<(($0 + 1) * sp.p1), columns: 0..<sp.q1) }
  }

  /// The B's minimizing the output error for the current A's.
  private static func solveB(_ s: KroneckerSum, _ x: Matrix, _ y: Matrix) throws -> [Matrix] {
    let sp = s.split, n = x.rows, r = s.terms, cols = r * sp.p2
    // X_nᵀ stacked: [(n, i2), i1].
    var xt = Matrix(rows: n * sp.p2, columns: sp.p1)
    for row in 0..<n {
      for i1 in 0..<sp.p1 {
        for i2 in 0..<sp.p2 { xt[row * sp.p2 + i2, i1] = x[row, i1 * sp.p2 + i2] }
      }
    }
    var phi = Matrix(rows: n * sp.q1, columns: cols), target = Matrix(rows: n * sp.q1, columns: sp.q2)
    for k in 0..<r {
      let v = xt.multiplied(by: s.a[k])  // [(n, i2), j1]
      for row in 0..<n {
        for i2 in 0..<sp.p2 {
          for j1 in 0..<sp.q1 { phi[row * sp.q1 + j1, k * sp.p2 + i2] = v[row * sp.p2 + i2, j1] }
        }
      }
    }
    for row in 0..<n {
      for j1 in 0..<sp.q1 {
        for j2 in 0..<sp.q2 { target[row * sp.q1 + j1, j2] = y[row, j1 * sp.q2 + j2] }
      }
    }
    let all = try ridgeSolve(phi, target)
    return (0..<r).map { all.submatrix(rows: ($0 * sp.p2)..<(($0 + 1) * sp.p2), columns: 0..<sp.q2) }
  }

  /// Ridge least squares with λ = 1e-5 · trace(ΦᵀΦ) / columns (keeps a rank-deficient Φ, as with
  /// few calibration rows, solvable), raised tenfold while float32 Cholesky fails.
  private static func ridgeSolve(_ phi: Matrix, _ target: Matrix) throws -> Matrix {
    let trace = phi.elements.reduce(0.0) { $0 + Double($1) * Double($1) }
    var lambda = max(1e-5 * trace / Double(max(phi.columns, 1)), 1e-12)
    for _ in 0..<4 {
      if let x = try? Matrix.ridgeLeastSquares(phi, target, lambda: Float(lambda)), x.elements.allSatisfy(\.isFinite) { return x }
      lambda *= 10
    }
    throw LinalgError.notPositiveDefinite(order: 0)
  }

  /// Rescales each term so ‖A_k‖ = ‖B_k‖ (the product is unchanged; keeps the ALS well scaled).
  private static func balance(_ s: inout KroneckerSum) {
    for k in 0..<s.terms {
      let na = Double(s.a[k].frobeniusNorm), nb = Double(s.b[k].frobeniusNorm)
      guard na > 0, nb > 0 else { continue }
      let c = Float((nb / na).squareRoot())
      s.a[k].elements = s.a[k].elements.map { $0 * c }
      s.b[k].elements = s.b[k].elements.map { $0 / c }
    }
  }
}

/// The doping of METHODS §3.5: the K entries of the residual E = W − W' with the largest
/// |E_ij|·s_i (s_i the input column's norm with calibration, 1 without), as rows `rows` of a
/// |rows| × q correction matrix read through a Gather of those input columns.
struct KroneckerDoping {
  /// The input features touched, ascending.
  let rows: [Int]
  /// |rows| × q, zero except at the chosen entries.
  let values: Matrix
  let entries: Int

  var params: Int { values.rows * values.columns }

  init?(residual e: Matrix, count k: Int, inputScale: [Float]?) {
    guard k > 0, e.rows > 0, e.columns > 0 else { return nil }
    let q = e.columns
    var scored = e.elements.indices.map { i -> (Int, Float) in
      (i, abs(e.elements[i]) * (inputScale?[i / q] ?? 1))
    }
    scored.sort { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }
    let chosen = scored.prefix(k).filter { $0.1 > 0 }.map(\.0)
    guard !chosen.isEmpty else { return nil }
    let rowSet = Array(Set(chosen.map { $0 / q })).sorted()
    let index = Dictionary(uniqueKeysWithValues: rowSet.enumerated().map { ($0.element, $0.offset) })
    var d = Matrix(rows: rowSet.count, columns: q)
    for i in chosen { d[index[i / q]!, i % q] = e.elements[i] }
    rows = rowSet
    values = d
    entries = chosen.count
  }

  /// Adds the correction into `w` (a dense p × q matrix).
  func add(to w: inout Matrix) {
    for (ri, i) in rows.enumerated() {
      for j in 0..<values.columns { w[i, j] += values[ri, j] }
    }
  }
}

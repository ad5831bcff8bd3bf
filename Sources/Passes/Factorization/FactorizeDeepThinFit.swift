import Linalg

/// The calibration-aware fit of factorize-deepthin (issue 7, METHODS §2.3 and §5): alternating
/// least squares on the layer's output error over the two factors of a re-laid-out weight.
///
/// The rebuilt weight is `W'[i, j] = P[f div n', f mod n']` with `P = X_f·W_f` and f the element's
/// flat index in the node layout (`i·d_out + j` for MatMul and Gemm, `j·d_in + i` for a Conv's
/// [M, C·k…]); padding entries (f ≥ N) are free. With the calibration rows X̂ (inputs from the model
/// rewritten so far) and Y (the original's outputs), the loss
///
///     L(W') = ‖Y − X̂·W'‖² + δ‖W' − W‖² = ⟨W', G·W'⟩ − 2⟨W', C⟩ + const,
///     G = X̂ᵀX̂ + δI (d_in × d_in),   C = X̂ᵀY + δW (d_in × d_out),   δ = 1e-5·trace(X̂ᵀX̂)/d_in
///
/// is quadratic in X_f for fixed W_f and the other way round. The unknowns of a half-step are m'·r
/// (or r·n'), far too many for one dense normal-equation system on real layers (≈ 150 000 for a
/// MiniLM feed-forward layer), so each half-step is one Gauss–Seidel sweep over blocks, each block
/// solved exactly by its own normal equations with the rest fixed: a row u = X_f[a, :] (its entries
/// are P's row a), then a column u = W_f[:, b]. For a block with entries e (flat f_e at (i_e, j_e))
/// and coefficient vectors c_e (W_f[:, b_e] or X_f[a_e, :], s × r as a matrix C):
///
///     g = Σ_e R[i_e, j_e]·c_e,     R = G·W' − C (the gradient, kept up to date)
///     H = Σ_{e, e' : j_e = j_e'} G[i_e, i_e']·c_e·c_e'ᵀ         (r × r: the block's exact Hessian)
///     u ← u − (H + λI)⁻¹·g,        R[:, j_e] += G[:, i_e]·(Δu·c_e)
///
/// λ is a tiny ridge (1e-7·trace(H)/r) for blocks the calibration rows do not determine. Each block
/// step minimizes L over its block (a descent step with λ > 0), so L never rises; the loop keeps
/// the factors with the lowest fitting-row error ‖Y − X̂·W'‖/‖Y‖ met, the start included. Nothing of
/// Kronecker size is formed: the work per round is about 2·r²·N + 2·N·d_in (plus r·m'·n' + d_in²·d_out
/// to rebuild W' and R twice) multiply-adds, and N·r² grows with the layer, so `affordable` caps it.
struct DeepThinALS {
  let layout: DeepThinLayout
  let inputs: Int, outputs: Int
  /// Whether the node layout is [d_out, d_in] (a Conv's [M, C·k…]) rather than [d_in, d_out].
  let outputMajor: Bool
  /// G = X̂ᵀX̂ + δI.
  let gram: Matrix
  /// C = X̂ᵀY + δW.
  let cross: Matrix

  /// `weight` is the layer's d_in × d_out matrix (the ridge pulls towards it).
  init(layout: DeepThinLayout, weight: Matrix, statistics s: LayerStatistics, outputMajor: Bool) {
    self.layout = layout
    inputs = weight.rows
    outputs = weight.columns
    self.outputMajor = outputMajor
    var g = s.inputs.multiplied(by: s.inputs, transposingSelf: true)
    var trace = 0.0
    for i in 0..<g.rows { trace += Double(g[i, i]) }
    let delta = Float(max(1e-5 * trace / Double(max(g.rows, 1)), 1e-12))
    for i in 0..<g.rows { g[i, i] += delta }
    var c = s.inputs.multiplied(by: s.targets, transposingSelf: true)
    for k in c.elements.indices { c.elements[k] += delta * weight.elements[k] }
    gram = g
    cross = c
  }

  /// Multiply-adds of one round at rank r.
  static func cost(layout: DeepThinLayout, rank r: Int, inputs: Int, outputs: Int) -> Double {
    let n = Double(layout.count)
    return 2 * n * Double(r) * Double(r) + 2 * n * Double(inputs)
      + 2 * Double(r) * Double(layout.rows * layout.columns) + 2 * Double(inputs) * Double(inputs) * Double(outputs)
  }

  /// The largest round cost `refit` takes on (about a minute of two cores' BLAS per round).
  static let maxRoundCost = 2e11

  static func affordable(layout: DeepThinLayout, rank r: Int, inputs: Int, outputs: Int) -> Bool {
    cost(layout: layout, rank: r, inputs: inputs, outputs: outputs) <= maxRoundCost
  }

  /// (i, j) of W for the flat node-layout index f < N.
  @inline(__always) func position(_ f: Int) -> (i: Int, j: Int) {
    outputMajor ? (f % inputs, f / inputs) : (f / outputs, f % outputs)
  }

  /// W' (d_in × d_out) rebuilt from the factors.
  func weight(x: Matrix, w: Matrix) -> Matrix {
    let flat = layout.rebuild(x: x, w: w)
    if outputMajor { return Matrix(rows: outputs, columns: inputs, elements: flat).transposed }
    return Matrix(rows: inputs, columns: outputs, elements: flat)
  }

  /// Runs `iterations` rounds from (x, w); returns the factors with the lowest `error` met (the
  /// start included), that error, and the start's.
  func refit(x start: Matrix, w startW: Matrix, iterations: Int, error: (Matrix) -> Double)
    -> (x: Matrix, w: Matrix, error: Double, startError: Double)
  {
    let e0 = error(weight(x: start, w: startW))
    var best = (x: start, w: startW, error: e0)
    var x = start, w = startW
    for _ in 0..<iterations {
      sweepRows(x: &x, w: w)
      sweepColumns(x: x, w: &w)
      balance(x: &x, w: &w)
      let e = error(weight(x: x, w: w))
      guard e.isFinite else { break }
      if e < best.error { best = (x, w, e) }
    }
    return (best.x, best.w, best.error, e0)
  }

  /// R = G·W' − C.
  private func gradient(x: Matrix, w: Matrix) -> Matrix {
    var r = gram.multiplied(by: weight(x: x, w: w))
    for k in r.elements.indices { r.elements[k] -= cross.elements[k] }
    return r
  }

  /// One sweep over the rows of X_f (P's rows: flat indices a·n' ..< a·n' + n').
  private func sweepRows(x: inout Matrix, w: Matrix) {
    var r = gradient(x: x, w: w)
    let wt = w.transposed  // n' × rank: row b is W_f[:, b]
    let n1 = layout.columns, count = layout.count
    for a in 0..<layout.rows {
      let first = a * n1, s = min(n1, count - first)
      guard s > 0 else { break }
      let c = wt.submatrix(rows: 0..<s, columns: 0..<wt.columns)
      let flats = Array(first..<(first + s))
      guard let delta = step(flats: flats, coefficients: c, residual: &r) else { continue }
      for k in 0..<x.columns { x[a, k] += delta[k] }
    }
  }

  /// One sweep over the columns of W_f (P's columns: flat indices a·n' + b).
  private func sweepColumns(x: Matrix, w: inout Matrix) {
    var r = gradient(x: x, w: w)
    let n1 = layout.columns, count = layout.count
    for b in 0..<n1 {
      let s = (count - b + n1 - 1) / n1  // rows a with a·n' + b < N
      guard s > 0 else { continue }
      let c = x.submatrix(rows: 0..<s, columns: 0..<x.columns)
      let flats = (0..<s).map { $0 * n1 + b }
      guard let delta = step(flats: flats, coefficients: c, residual: &r) else { continue }
      for k in 0..<w.rows { w[k, b] += delta[k] }
    }
  }

  /// The block step Δu for entries `flats` with coefficient rows `c` (s × rank), applied to the
  /// gradient R; nil when the block's system cannot be solved (the block is left as it is).
  private func step(flats: [Int], coefficients c: Matrix, residual r: inout Matrix) -> [Float]? {
    let s = flats.count, rank = c.columns
    let positions = flats.map(position)
    // g = Cᵀ·(R at the block's entries); D = M·C with M[e, e'] = G[i_e, i_e'] when j_e = j_e'.
    var g = [Double](repeating: 0, count: rank)
    var d = Matrix(rows: s, columns: rank)
    var groups: [Int: [Int]] = [:]
    for (e, p) in positions.enumerated() { groups[p.j, default: []].append(e) }
    for e in 0..<s {
      let (i, j) = positions[e]
      let re = Double(r[i, j])
      for k in 0..<rank { g[k] += re * Double(c[e, k]) }
      for e2 in groups[j]! {
        let gv = gram[i, positions[e2].i]
        for k in 0..<rank { d[e, k] += gv * c[e2, k] }
      }
    }
    let h = c.multiplied(by: d, transposingSelf: true)
    var trace = 0.0
    for k in 0..<rank { trace += Double(h[k, k]) }
    guard trace > 0, trace.isFinite else { return nil }
    let lambda = max(1e-7 * trace / Double(rank), 1e-30)
    var hd = h.elements.map(Double.init)
    for k in 0..<rank { hd[k * rank + k] += lambda }
    guard let solution = try? Matrix.solvePositiveDefinite(hd, g, n: rank, r: 1), solution.allSatisfy(\.isFinite) else { return nil }
    let delta = solution.map { Float(-$0) }
    // R[:, j_e] += G[:, i_e]·(c_e·Δu); G is symmetric, so its row i_e.
    let columns = r.columns
    gram.elements.withUnsafeBufferPointer { gp in
      r.elements.withUnsafeMutableBufferPointer { rp in
        for e in 0..<s {
          var change: Float = 0
          for k in 0..<rank { change += c[e, k] * delta[k] }
          guard change != 0 else { continue }
          let (i, j) = positions[e]
          let row = i * inputs
          for t in 0..<inputs { rp[t * columns + j] += gp[row + t] * change }
        }
      }
    }
    return delta
  }

  /// Rescales each rank-one term so ‖X_f[:, k]‖ = ‖W_f[k, :]‖ (the product is unchanged).
  private func balance(x: inout Matrix, w: inout Matrix) {
    for k in 0..<x.columns {
      var nx = 0.0, nw = 0.0
      for i in 0..<x.rows { nx += Double(x[i, k]) * Double(x[i, k]) }
      for j in 0..<w.columns { nw += Double(w[k, j]) * Double(w[k, j]) }
      guard nx > 0, nw > 0 else { continue }
      let scale = Float((nw / nx).squareRoot().squareRoot())
      for i in 0..<x.rows { x[i, k] *= scale }
      for j in 0..<w.columns { w[k, j] /= scale }
    }
  }
}
